"""`make demo`: the whole chain on this machine, start to finish, in a couple of minutes.

Starts a real Kafka broker, a local SMTP sink standing in for the hospital's mail server,
the three services as separate processes, replays the bundled drill at full speed, shows
the crisis alerts as they are raised and the email the crisis team receives, then shuts
everything down.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stormwatch_shared.kafka import ensure_topics  # noqa: E402
from stormwatch_shared.settings import KafkaSettings  # noqa: E402
from stormwatch_shared.topics import MENTIONS_RAW, MENTIONS_SCORED  # noqa: E402

from tests.support.kafka_local import KAFKA_SH, free_port, group_lag  # noqa: E402
from tests.support.processes import Service, wait_for  # noqa: E402
from tests.support.smtp_sink import SmtpSink  # noqa: E402

DRILL = REPO / "examples" / "drill"


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m", flush=True)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="stormwatch-demo-"))
    port = free_port()
    say(f"Kafka starten / starting Kafka (KRaft) on 127.0.0.1:{port}")
    subprocess.run([str(KAFKA_SH), "start", str(port), str(work / "kafka")], check=True)
    sink = SmtpSink().start()
    services: list[Service] = []
    try:
        kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", topic_prefix="demo.")
        ensure_topics(kafka)
        say(f"Mail-Senke / SMTP sink on 127.0.0.1:{sink.port}")
        env = {
            "STORMWATCH_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "STORMWATCH_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "LISTENER_REPLAY_DIR": str(DRILL),
            "ALERTING_SMTP_PORT": str(sink.port),
            "ALERTING_EMAIL_TO": "krisenstab@klinikum-nordstadt.example",
            "ALERTING_STATE_DB": str(work / "alerting.sqlite"),
        }
        say("Dienste starten / starting alerting and sentiment")
        services = [Service(name, env, work) for name in ("alerting", "sentiment")]
        say(f"Drill abspielen / replaying {DRILL.relative_to(REPO)} (two weeks, full speed)")
        started = time.monotonic()
        listener = Service("listener", env, work)
        listener.proc.wait(timeout=300)
        if listener.proc.returncode != 0:
            print(listener.log(), file=sys.stderr)
            return 1
        bootstrap = kafka.bootstrap_servers
        wait_for(
            lambda: (
                group_lag(bootstrap, "stormwatch-sentiment", kafka.topic(MENTIONS_RAW)) == 0
                and group_lag(bootstrap, "stormwatch-alerting", kafka.topic(MENTIONS_SCORED)) == 0
            ),
            300,
            "the pipeline to drain",
        )
        wait_for(lambda: bool(sink.messages), 30, "the first alert email")
        time.sleep(2)
        elapsed = time.monotonic() - started
        alarms = [line for line in services[0].log().splitlines() if "ALARM" in line]
        say("Alarme / alerts (alerting service log):")
        for line in alarms:
            print("   " + line.split("ALARM", 1)[1].strip())
        say(f"E-Mails an den Krisenstab / emails received by the SMTP sink: {len(sink.messages)}")
        first = sink.messages[0]
        print(f"   Subject: {first['Subject']}\n")
        for line in first.get_content().splitlines()[:22]:
            print(f"   | {line}")
        say(
            f"Zusammenfassung / summary: {len(alarms)} alert events, {len(sink.messages)} "
            f"emails, pipeline drained in {elapsed:.1f} s"
        )
        return 0
    finally:
        say("Herunterfahren / shutting down")
        for service in services:
            service.stop()
        sink.stop()
        subprocess.run([str(KAFKA_SH), "stop", str(work / "kafka")], check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
