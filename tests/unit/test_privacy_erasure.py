"""Erasing an author or a mention from real detector snapshots (no broker, explicit times)."""

from __future__ import annotations

import json

import pytest
from stormwatch_alerting.domain.detector import Detector, preset
from stormwatch_alerting.domain.types import Observation
from stormwatch_alerting.privacy import Subject, erase_from_snapshot, residue, subject_digest

pytestmark = pytest.mark.privacy

T0 = 1_772_409_600.0  # 2026-03-02 00:00 UTC


def _detector() -> Detector:
    """A target that saw a steady crowd, then a burst of negative posts with replies."""
    det = Detector(preset("normal"))
    for n, minute in enumerate(range(0, 6 * 60, 7), start=1):  # six ordinary hours
        det.observe(
            Observation(
                "paula",
                T0 + minute * 60,
                f"x:{n}",
                f"u{n % 9}",
                100 + n,
                0.1,
                "neutral",
                url=f"https://x.example/crowd{n % 9}/status/{n}",
                target_kind="ambassador",
            )
        )
    burst = T0 + 6 * 3600
    det.observe(
        Observation(
            "paula",
            burst,
            "x:root",
            "u-erase",
            50_000,
            0.95,
            "negative",
            url="https://x.example/erase_me/status/root",
            target_kind="ambassador",
        )
    )
    for i in range(12):
        det.observe(
            Observation(
                "paula",
                burst + 30 * (i + 1),
                f"x:r{i}",
                f"v{i}",
                500 + i,
                0.9,
                "negative",
                in_reply_to="x:root",
                url=f"https://x.example/v{i}/status/r{i}",
                target_kind="ambassador",
            )
        )
    return det


@pytest.mark.parametrize(
    ("subject", "gone", "kept"),
    [
        (
            Subject.of(author_ids=["u-erase"], mention_ids=["x:root"]),
            ["u-erase", "x:root"],
            ["v3", "u4", "x:r11"],
        ),
        (Subject.of(mention_ids=["x:r10"]), ["x:r10"], ["u-erase", "v2", "x:root", "x:r11"]),
        (
            Subject.of(author_ids=["v5"], mention_ids=["x:r5"]),
            ["v5", "x:r5"],
            ["u-erase", "x:root"],
        ),
        (Subject.of(handles=["@Erase_Me"]), ["erase_me"], ["u-erase", "v1"]),
    ],
)
def test_erasure_removes_the_subject_and_nothing_else(
    subject: Subject, gone: list[str], kept: list[str]
) -> None:
    det = _detector()
    before = det.snapshot("paula")
    assert residue(before, gone), "the fixture must contain what the test erases"
    after, removed = erase_from_snapshot(before, subject)
    assert removed > 0
    assert residue(after, gone, exact=True) == [] and residue(after, gone) == []
    assert set(residue(after, kept, exact=True)) >= set(residue(before, kept, exact=True))
    assert before == det.snapshot("paula"), "the input snapshot is not modified"
    # the rewritten state is a valid detector state that continues where the old one was
    fresh = Detector(preset("normal"))
    fresh.restore("paula", json.loads(json.dumps(after)))
    assert fresh.status("paula") == det.status("paula")


def test_reply_counts_survive_the_erasure_of_their_parent() -> None:
    after, _ = erase_from_snapshot(
        _detector().snapshot("paula"), Subject.of(mention_ids=["x:root"])
    )
    replies = [b[9] for b in [v for _, v in after["open"]] + after["window"] if b[9]]
    assert sum(r.get("erased:0", 0) for r in replies) == 12
    assert not any("x:root" in r for r in replies)


def test_nothing_to_erase_reports_zero() -> None:
    state = _detector().snapshot("paula")
    after, removed = erase_from_snapshot(state, Subject.of(author_ids=["nobody"]))
    assert removed == 0 and after == state


def test_version_2_snapshots_written_before_the_burst_test_are_erased_too() -> None:
    state = {**_detector().snapshot("paula"), "version": 2}
    state.pop("newh", None)
    state.pop("burst", None)
    author = next(iter(state["known"]))
    after, removed = erase_from_snapshot(state, Subject.of(author_ids=[author]))
    assert removed > 0 and author not in after["known"]


def test_unknown_snapshot_versions_are_refused() -> None:
    state = {**_detector().snapshot("paula"), "version": 999}
    with pytest.raises(ValueError, match="version"):
        erase_from_snapshot(state, Subject.of(author_ids=["u1"]))


@pytest.mark.parametrize(
    ("handle", "url", "hit"),
    [
        ("@anna", "https://x.com/anna/status/1", True),
        ("anna", "https://x.com/ANNA/status/1", True),
        ("@anna@mastodon.social", "https://mastodon.social/@anna/1", True),
        ("@anna@mastodon.social", "https://other.example/@anna/1", False),
        ("@anna", "https://x.com/johanna/status/1", False),
        ("@anna", None, False),
    ],
)
def test_post_links_match_by_handle(handle: str, url: str | None, hit: bool) -> None:
    assert Subject.of(handles=[handle]).matches_url(url) is hit


def test_erasure_log_digest_is_keyed_and_does_not_contain_the_handle() -> None:
    a = subject_digest(b"salt-a", "author", "@Anna")
    assert a == subject_digest(b"salt-a", "author", "anna")  # the same person
    assert a != subject_digest(b"salt-b", "author", "anna")  # per installation
    assert "anna" not in a and len(a) == 64
