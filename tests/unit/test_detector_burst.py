"""The burst test: a run of new negative authors within minutes, judged against the target's
usual rate of new negative authors (``Detector._burst``), on synthetic streams with explicit
event times (the fake clock)."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_alerting.domain.detector import Detector, DetectorConfig, preset
from stormwatch_alerting.domain.nbstats import LN10, nb_log_sf
from stormwatch_alerting.domain.types import Observation, Transition

from tests.support.detector import run, run_with_restore

T0 = 1_772_409_600.0  # 2026-03-02T00:00:00Z, a Monday
MIN = 60.0
HOUR = 3600.0
DAY = 24 * HOUR
LEVEL = {"watch": 1, "warning": 2, "critical": 3}
AT = T0 + 6 * DAY + 11 * HOUR  # a Sunday late morning, after a week of history


def regulars(seed: int, days: float, per_hour: float = 4.0, pool: int = 60) -> list[Observation]:
    """A quiet target as the drills have it: a small pool of regulars, ~12 % negative."""
    rng = random.Random(seed)
    out: list[Observation] = []
    t = T0
    i = 0
    while True:
        hour = (t - T0) % DAY / HOUR
        t += rng.expovariate(per_hour * (0.3 if hour < 6 else 1.3) / HOUR)
        if t >= T0 + days * DAY:
            return out
        negative = rng.random() < 0.12
        out.append(
            Observation(
                target_id="hospital",
                at=t,
                mention_id=f"bg{seed}:{i}",
                author_id=f"reg{rng.randrange(pool)}",
                followers=rng.randrange(50, 2000),
                negative=0.85 if negative else 0.08,
                label="negative" if negative else rng.choice(("neutral", "positive")),
            )
        )
        i += 1


def episode(
    kind: str, start: float, n: int, every_s: float, seed: int = 3, reply: str | None = None
) -> list[Observation]:
    """``n`` mentions, one every ``every_s`` seconds, from the accounts the kind implies."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if kind == "spam":
            author, label, neg = f"spam{i % 2}", "negative", 0.95
        elif kind == "storm":
            author, label, neg = f"new{seed}:{i}", "negative", 0.9
        elif kind == "viral":  # a positive post goes viral; one reply in twenty is negative
            bad = i % 20 == 7
            author = f"fan{seed}:{i}"
            label, neg = ("negative", 0.8) if bad else ("positive", 0.03)
        else:  # news: neutral coverage
            author, label, neg = f"reader{seed}:{i}", "neutral", 0.1
        out.append(
            Observation(
                target_id="hospital",
                at=start + i * every_s + rng.uniform(0.0, 1.0),
                mention_id=f"{kind}{seed}:{i}",
                author_id=author,
                followers=rng.randrange(20, 3000),
                negative=neg,
                label=label,
                in_reply_to=reply,
                topics=("hygiene",) if label == "negative" else (),
                url=f"https://example.invalid/{kind}/{i}",
            )
        )
    return out


def _at(o: Observation) -> float:
    return o.at


def top(trs: list[Transition]) -> int:
    return max((LEVEL[t.level] for t in trs if t.kind != "resolved"), default=0)


def first_at(trs: list[Transition], level: int) -> float | None:
    times = [t.at for t in trs if t.kind != "resolved" and LEVEL[t.level] >= level]
    return min(times) if times else None


NO_BURST = replace(DetectorConfig(), burst_min_authors=10**6)


@pytest.mark.parametrize(
    ("name", "kind", "n", "every_s", "reply", "lowest", "highest"),
    [
        # a fast pile-on of new negative authors on one post: a page within minutes
        ("pile-on", "storm", 6, 90.0, "root:1", 2, 3),
        ("fast storm, no replies", "storm", 6, 90.0, None, 2, 3),
        # two accounts posting many negatives: two authors, never a burst of them
        ("spam, 2 accounts", "spam", 60, 30.0, None, 0, 1),
        # a viral positive post: many newcomers, a few of them negative, none a page
        ("viral", "viral", 240, 15.0, "root:2", 0, 0),
        # neutral news coverage
        ("news", "news", 150, 30.0, None, 0, 0),
        # the same new complainers, but one every two hours: no burst
        ("slow trickle", "storm", 4, 2 * HOUR, None, 0, 1),
    ],
)
def test_burst_table(
    name: str, kind: str, n: int, every_s: float, reply: str | None, lowest: int, highest: int
) -> None:
    obs = regulars(1, 8) + episode(kind, AT, n, every_s, reply=reply)
    level = top(run(obs))
    assert lowest <= level <= highest, (name, level)


def test_fast_storm_pages_on_its_third_author_and_explains_it() -> None:
    storm = episode("storm", AT, 6, 90.0)
    trs = run(regulars(2, 8) + storm)
    warning = first_at(trs, 2)
    assert warning is not None and warning <= storm[2].at  # three authors in three minutes
    t = next(t for t in trs if t.kind != "resolved" and LEVEL[t.level] >= 2)
    ev = t.evidence
    assert ev["gates"]["burst"] and ev["gates"]["negative_share"] and ev["gates"]["new_authors"]
    assert ev["observed"] >= 3 and ev["expected"] < 0.05  # new negative authors vs expected
    assert 0.0 < ev["p_value"] < 1e-7 and ev["score"] >= DetectorConfig().warning_score
    assert ev["window_start"] <= ev["window_end"]  # the run's span
    # without the burst test the same storm pages later (the author gate needs eight)
    later = first_at(run(regulars(2, 8) + episode("storm", AT, 12, 90.0), NO_BURST), 2)
    assert later is None or later > warning


def test_burst_score_is_the_documented_probability() -> None:
    """Three new negative authors: score = -log10(rate*bucket * P(N(span) >= 2) * tests)."""
    det = Detector()
    storm = episode("storm", AT, 3, 120.0)
    for o in sorted(regulars(4, 8), key=lambda o: o.at):
        if o.at > storm[-1].at:
            break
        det.observe(o)
    for o in storm:
        det.observe(o)
    st_ = det._states["hospital"]
    last = storm[-1].at
    burst = det._burst(st_, last, int(last // 300), 0.0)
    _q, rate, size, offset, _cap = st_.burst_par
    assert burst is not None and burst.authors == 3
    span = last - storm[0].at
    lam_b = rate * 300.0
    expected = -(nb_log_sf(2, rate * span, size) + math.log(lam_b) + math.log(6)) / LN10
    assert burst.score == pytest.approx(expected, rel=1e-9)
    assert offset == pytest.approx((math.log(lam_b) + math.log(6)) / LN10)


def test_viral_negatives_fail_the_share_gate_not_the_burst() -> None:
    """The viral post's few negative newcomers do form fast runs; the share gates hold."""
    det = Detector()
    scores = []
    obs = regulars(5, 8) + episode("viral", AT, 400, 6.0, reply="root:2")
    for o in sorted(obs, key=lambda o: o.at):
        assert not det.observe(o)
        st_ = det._states["hospital"]
        if o.mention_id.startswith("viral") and o.label == "negative" and len(st_.burst) >= 3:
            b = det._burst(st_, o.at, int(o.at // 300), 0.0)
            scores.append(b.score if b else 0.0)
    assert max(scores) >= DetectorConfig().watch_score  # the run alone would be surprising


def test_presets_order_the_burst() -> None:
    obs = regulars(6, 8) + episode("storm", AT, 8, 100.0)
    at = {name: first_at(run(obs, preset(name)), 1) for name in ("eager", "normal", "calm")}
    assert None not in at.values()
    assert at["eager"] <= at["normal"] <= at["calm"]  # type: ignore[operator]


def test_warmup_blocks_bursts() -> None:
    obs = regulars(7, 0.5) + episode("storm", T0 + 8 * HOUR, 6, 60.0)
    assert run(obs) == []


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000))
def test_renaming_authors_changes_no_burst(seed: int) -> None:
    obs = regulars(8, 8) + episode("storm", AT, 5, 100.0) + episode("spam", AT - DAY, 40, 30.0)
    names = sorted({o.author_id for o in obs})
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)
    rename = dict(zip(names, (f"x{n}" for n in shuffled), strict=True))
    assert run([o.replace(author_id=rename[o.author_id]) for o in obs]) == run(obs)


@settings(max_examples=10, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    extra=st.integers(min_value=1, max_value=4),
)
def test_more_new_complainers_never_weaken_the_burst(seed: int, extra: int) -> None:
    """Adding new negative authors inside a run never lowers the best run's score."""
    base = sorted(regulars(seed, 8) + episode("storm", AT, 3, 200.0, seed=seed), key=lambda o: o.at)
    more = sorted(
        base + episode("storm", AT + 50.0, extra, 100.0, seed=seed + 1), key=lambda o: o.at
    )

    def best(obs: list[Observation]) -> float:
        det = Detector(replace(DetectorConfig(), retest_on_arrival=True))
        top_score = 0.0
        for o in obs:
            if o.at > AT + 1000.0:
                break
            det.observe(o)
            st_ = det._states["hospital"]
            if len(st_.burst) >= 3 and o.author_id.startswith("new"):
                b = det._burst(st_, o.at, int(o.at // 300), -1e9)
                top_score = max(top_score, b.score if b else 0.0)
        return top_score

    assert best(more) >= best(base) - 1e-9


@pytest.mark.parametrize("offset", [-2, 0, 1, 3])
def test_restore_within_a_burst_continues_identically(offset: int) -> None:
    obs = sorted(regulars(9, 8) + episode("storm", AT, 10, 80.0), key=lambda o: o.at)
    whole = run(obs)
    k = next(i for i, o in enumerate(obs) if o.at >= AT) + 2 + offset
    assert run_with_restore(obs, k, "hospital") == whole


def test_version_2_snapshot_still_loads() -> None:
    """A state written before the burst test existed restores and keeps detecting."""
    obs = sorted(regulars(10, 8) + episode("storm", AT, 10, 80.0), key=lambda o: o.at)
    cut = next(i for i, o in enumerate(obs) if o.at >= AT - HOUR)
    first = Detector()
    for o in obs[:cut]:
        first.observe(o)
    old = json.loads(json.dumps(first.snapshot("hospital")))
    old["version"] = 2
    del old["newh"], old["burst"]
    second = Detector()
    second.restore("hospital", old)
    out: list[Transition] = []
    for o in obs[cut:]:
        out.extend(second.observe(o))
    assert top(out) >= 2
    with pytest.raises(ValueError, match="unsupported"):
        Detector().restore("hospital", {**old, "version": 1})


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    gaps=st.lists(st.floats(min_value=0.0, max_value=900.0), min_size=3, max_size=10),
    per_hour=st.floats(min_value=0.5, max_value=60.0),
)
def test_the_skip_bound_never_hides_a_run(seed: int, gaps: list[float], per_hour: float) -> None:
    """``cap`` (the best score any run could reach in the bucket) bounds every real run."""
    det = Detector()
    storm = []
    t = AT
    for i, g in enumerate(gaps):
        t += g
        storm.append(episode("storm", t, 1, 1.0, seed=seed * 100 + i)[0])
    for o in sorted(regulars(seed, 7, per_hour=per_hour) + storm, key=_at):
        det.observe(o)
        st_ = det._states["hospital"]
        if o in storm and len(st_.burst) >= 3:
            burst = det._burst(st_, o.at, int(o.at // 300), -1e9)
            cap = st_.burst_par[4]
            if burst is not None:
                assert burst.score <= cap + 1e-9
