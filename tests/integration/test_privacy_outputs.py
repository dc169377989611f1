"""No post text and no author in short channels or metrics, after the bundled drill.

The drill runs through the functions the services run (matching, scoring, detection, the
text cache that quotes top posts, the metrics each service records); its alerts then go
through the routed delivery pipeline against local fakes, which capture every SMS, push and
chat message. The Prometheus registry is what ``/metrics`` serves.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from prometheus_client import REGISTRY, generate_latest
from stormwatch_alerting.adapters import RecentPosts, alert_event, observation
from stormwatch_alerting.domain.detector import Detector, preset
from stormwatch_alerting.domain.figures import BucketFigures
from stormwatch_listener.domain.matching import received_events
from stormwatch_sentiment.domain.topics import TopicTagger
from stormwatch_sentiment.engines import load_default
from stormwatch_sentiment.scoring import Scorer
from stormwatch_shared import metrics
from stormwatch_shared.scenario import ReadProblems, iter_mentions, open_scenario
from stormwatch_shared.targets import TargetMatcher

from tests.conftest import DRILL
from tests.integration.test_delivery_pipeline import Rig, routing, run
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.privacy


def _drill() -> tuple[list[Any], set[str], set[str]]:
    """Alert events of the drill, and every handle and post text it contains."""
    scenario = open_scenario(DRILL)
    matcher = TargetMatcher(scenario.targets)
    mentions = sorted(
        iter_mentions(scenario.mentions_path, ReadProblems()), key=lambda m: m.created_at
    )
    scorer = Scorer(load_default(), TopicTagger.default())
    detector, posts = Detector(preset("normal")), RecentPosts()
    figures = metrics.TargetFigures(BucketFigures())
    alerts: list[Any] = []
    for i in range(0, len(mentions), 256):
        batch = [e for m in mentions[i : i + 256] for e in received_events(m, matcher)]
        scored = scorer.score(batch)
        metrics.record_scored(scored, 0.01)
        for event in scored:
            posts.add(event)
            obs = observation(event)
            figures.observe(obs.target_id, obs.at, obs.author_id, obs.label == "negative")
            for t in detector.observe(obs):
                alert = alert_event(
                    posts.enrich(t), target_name=event.target_name, target_kind=event.target_kind
                )
                metrics.record_alert(alert)
                alerts.append(alert)
            figures.publish_status(obs.target_id, detector.status(obs.target_id))
    handles = {m.author.handle for m in mentions}
    texts = {m.text for m in mentions if len(m.text) >= 20}
    return alerts, handles, texts


def _fragments(texts: set[str]) -> set[str]:
    """Distinctive pieces of each text (a renderer may cut a text, never quote less than this)."""
    out = set()
    for text in texts:
        words = [w for w in re.split(r"\s+", text) if len(w) >= 3]
        out.update(" ".join(words[i : i + 3]) for i in range(0, max(1, len(words) - 2)))
    return {f for f in out if len(f) >= 15}


def test_drill_sends_no_post_text_or_handle_by_sms_push_or_chat_and_metrics_stay_clean(
    smtp_sink: SmtpSink, tmp_path: Any
) -> None:
    alerts, handles, texts = _drill()
    assert alerts, "the drill must raise alerts for this test to mean anything"
    quoted = [p for a in alerts for p in a.evidence.top_posts if p.get("text")]
    assert quoted, "alerts quote top posts (texts and handles) for email and the crisis room"
    fragments = _fragments({str(p["text"]) for p in quoted} | texts)
    doc = routing()
    doc["ambassadors"][0]["channels"] = ["email", "sms"]

    async def check(rig: Rig) -> None:
        for alert in alerts:
            await rig.delivery.handle(alert)
        await rig.delivery.drain()
        short = [m.get("Body") or m.get("text") for m in rig.sms()]
        short += [m["message"] for m in rig.fakes.of("/ntfy")] + [
            m.get("title", "") for m in rig.fakes.of("/ntfy")
        ]
        short += [str(m) for m in rig.fakes.of("/hooks/")]
        assert len(short) >= 3, "SMS, push and chat must all have been sent"
        for message in short:
            low = str(message).casefold()
            assert not [h for h in handles if h.casefold() in low], message
            assert not [f for f in fragments if f.casefold() in low], message
        # the email to the crisis team is where texts may appear (authorised staff)
        assert any(
            str(quoted[0]["text"])[:40] in m.get_body(("plain",)).get_content()
            for m in rig.smtp.messages
        )
        # the audit log records who was told what, not what the posts said
        for row in rig.delivery.store.audit_rows(limit=100_000):
            detail = str(row["detail"] or "").casefold()
            assert not [h for h in handles if h.casefold() in detail]

    run(check, smtp_sink, tmp_path, doc=doc)

    exposed = generate_latest(REGISTRY).decode()
    assert 'target="paula"' in exposed or 'target="hospital"' in exposed  # metrics were recorded
    leaked = [h for h in handles if h.casefold() in exposed.casefold()]
    assert leaked == []
    ids = {str(p["mention_id"]) for a in alerts for p in a.evidence.top_posts}
    assert ids and [i for i in ids if i in exposed] == []
