"""From ``MentionReceived`` to ``MentionScored``: one function for the service and the replay.

Sharing it is what lets ``stormwatch replay`` promise the same alerts as the live pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from stormwatch_shared.events import (
    SCHEMA_VERSION,
    MentionReceived,
    MentionScored,
    derived_event_id,
)

from stormwatch_sentiment.domain.language import guess_language
from stormwatch_sentiment.domain.model import SentimentModel
from stormwatch_sentiment.domain.topics import TopicTagger

SUPPORTED_LANGUAGES = frozenset({"de", "en"})
T = TypeVar("T")


def _bounded(scores: Mapping[str, float]) -> dict[str, float]:
    """Probabilities summed over an engine's labels may overshoot 1 (or undershoot 0) by a
    rounding error; those are clipped. Anything further off (NaN, infinity) is left for the
    schema to refuse, which sends that mention to the dead-letter topic with the reason."""
    return {
        k: (1.0 if 1.0 < v <= 1.000001 else 0.0 if -0.000001 <= v < 0.0 else v)
        for k, v in scores.items()
    }


class Scorer:
    def __init__(self, model: SentimentModel, tagger: TopicTagger) -> None:
        from stormwatch_sentiment.engines.native import needle_check

        self.model = model
        self.tagger = tagger
        # the tagger's pre-check in C where the library is built (one call per batch)
        self._holds_needle = needle_check(tagger.needles)

    def score_or_refuse(
        self,
        events: Sequence[MentionReceived],
        build: Callable[[dict[str, Any]], T] = lambda f: MentionScored(**f),  # type: ignore[assignment,return-value]
        build_many: Callable[[list[dict[str, Any]]], list[T]] | None = None,
    ) -> tuple[list[T], list[tuple[int, str]]]:
        """The scored events, and ``(index, reason)`` for each event that cannot be scored.

        Why: scoring is all or nothing per batch, and the consumer retries a failed batch.
        An error that one mention causes every time (a ``ValueError``: a value the output
        schema refuses, a text an engine rejects) would hold its partition forever, so the
        batch is then scored one event at a time and only the refused ones are reported, for
        the dead-letter topic. Other errors (an engine that broke) still fail the batch: a
        retry may cure them, and no mention is parked for them.

        ``build`` makes the output from the fields of ``MentionScored``: the model itself
        (the replay), or the service's msgspec validation (``FastEncoder.validate``), which
        refuses exactly what the model refuses. ``build_many``, where given, does the same
        for the whole batch at once (``FastEncoder.validate_many``); after a refusal the
        events are built one by one with ``build``, which names each refused one.
        """
        try:
            fields = self.fields(events)
            return (build_many(fields) if build_many else [build(f) for f in fields]), []
        except ValueError:
            pass
        scored: list[T] = []
        refused: list[tuple[int, str]] = []
        for i, event in enumerate(events):
            try:
                scored.extend(build(f) for f in self.fields([event]))
            except ValueError as exc:
                refused.append((i, " ".join(f"cannot be scored: {exc}".split())[:500]))
        return scored, refused

    def score(self, events: Sequence[MentionReceived]) -> list[MentionScored]:
        return [MentionScored(**f) for f in self.fields(events)]  # the replay's route

    def fields(self, events: Sequence[MentionReceived]) -> list[dict[str, Any]]:
        """The field values of each event's ``MentionScored``, one computation for the
        service and the replay. ``events`` may also be ``FastDecoder`` structs of
        ``MentionReceived``: only attributes are read."""
        # A mention that concerns two targets arrives twice; score its text once.
        unique: dict[str, int] = {}
        texts: list[str] = []
        for event in events:
            if event.mention.id not in unique:
                unique[event.mention.id] = len(texts)
                texts.append(event.mention.text)
        results = self.model.predict(texts)
        topics = self.tagger.tag_many(texts, self._holds_needle)
        model_id = self.model.model_id
        out = []
        for event in events:
            first = unique[event.mention.id]
            result = results[first]
            text = event.mention.text
            language = (event.mention.lang or guess_language(text) or "und").lower()
            out.append(
                {
                    "event_id": derived_event_id(event.event_id, "scored"),
                    "schema_version": SCHEMA_VERSION,
                    "drill": event.drill,
                    "type": "MentionScored",
                    "occurred_at": event.occurred_at,
                    "target_id": event.target_id,
                    "target_ids": event.target_ids,
                    "target_name": event.target_name,
                    "target_kind": event.target_kind,
                    "mention": event.mention,
                    "label": result.label,
                    "scores": _bounded(result.scores),
                    "language": language,
                    "language_supported": language in SUPPORTED_LANGUAGES,
                    "topics": topics[first],
                    "model_id": model_id,
                    "received_event_id": event.event_id,
                }
            )
        return out
