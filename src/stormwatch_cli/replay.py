"""``stormwatch replay``: scoring and detection in one process, on event time, no Kafka.

It runs exactly the functions the services run (target matching, ``Scorer``, the detector
and the transition→event adapter), so its report is what the live pipeline would raise.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from stormwatch_alerting.adapters import RecentPosts, alert_event, observation
from stormwatch_alerting.domain.detector import Detector, preset
from stormwatch_listener.domain.matching import received_events
from stormwatch_listener.domain.threads import ThreadTargets
from stormwatch_sentiment.domain.model import SentimentModel
from stormwatch_sentiment.scoring import Scorer
from stormwatch_shared.events import MentionReceived
from stormwatch_shared.scenario import ReadProblems, iter_in_event_order, open_scenario
from stormwatch_shared.targets import TargetMatcher

from stormwatch_cli.report import AlertReport

BATCH = 512


def replay(
    scenario_dir: Path,
    *,
    model: SentimentModel | None = None,
    sensitivity: str = "normal",
    progress: bool = False,
) -> dict[str, Any]:
    from stormwatch_sentiment.domain.topics import TopicTagger
    from stormwatch_sentiment.engines import load_default

    scenario = open_scenario(scenario_dir)
    matcher = TargetMatcher(scenario.targets)
    problems = ReadProblems()
    mentions = list(iter_in_event_order(scenario.mentions_path, problems))
    scorer = Scorer(model if model is not None else load_default(), TopicTagger.default())
    detector = Detector(preset(sensitivity))
    report = AlertReport()
    recent_posts = RecentPosts()
    counts = {"mentions": len(mentions), "events": 0, "unmatched": 0, "malformed": 0}
    started = time.monotonic()
    batch: list[MentionReceived] = []
    threads = ThreadTargets()  # as the listener: replies concern their parent's targets

    def flush() -> None:
        for scored in scorer.score(batch):
            recent_posts.add(scored)
            for t in detector.observe(observation(scored)):
                report.add(
                    alert_event(
                        recent_posts.enrich(t),
                        target_name=scored.target_name,
                        target_kind=scored.target_kind,
                    )
                )
        batch.clear()

    for i, mention in enumerate(mentions, start=1):
        events = received_events(mention, matcher, threads=threads)
        if not events:
            counts["unmatched"] += 1
        batch.extend(events)
        counts["events"] += len(events)
        if len(batch) >= BATCH:
            flush()
        if progress and (i % 2000 == 0 or i == len(mentions)):
            print(
                f"\r{i}/{len(mentions)} Erwähnungen / mentions ({i / len(mentions):.0%})",
                end="",
                file=sys.stderr,
                flush=True,
            )
    flush()
    if progress:
        print(file=sys.stderr)
    counts["malformed"] = problems.count
    return {
        "scenario": str(scenario_dir),
        "sensitivity": sensitivity,
        "model_id": scorer.model.model_id,
        "alerts": report.alerts(),
        "counts": counts,
        "problems": problems.messages,
        "seconds": round(time.monotonic() - started, 3),
    }
