"""Detector behaviour on synthetic streams with explicit event times (the fake clock)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stormwatch_alerting.domain.detector import Detector, DetectorConfig, preset
from stormwatch_alerting.domain.types import OBSERVATION_FIELDS, Observation, Transition

from tests.support.detector import interpreted_detector_module, run, run_with_restore

T0 = 1_772_409_600.0  # 2026-03-02T00:00:00Z, a Monday
HOUR = 3600.0
DAY = 24 * HOUR
LEVEL = {"watch": 1, "warning": 2, "critical": 3}


def background(
    seed: int, days: float, per_hour: float = 6.0, neg: float = 0.1, target: str = "hospital"
) -> list[Observation]:
    """Ordinary traffic: a day rhythm, a pool of regular authors, ~10 % negative."""
    rng = random.Random(seed)
    out: list[Observation] = []
    t = T0
    i = 0
    while t < T0 + days * DAY:
        hour = (t - T0) % DAY / HOUR
        rate = per_hour * (0.3 if hour < 6 else 1.3)
        t += rng.expovariate(rate / HOUR)
        label = "negative" if rng.random() < neg else rng.choice(("neutral", "positive"))
        out.append(
            Observation(
                target_id=target,
                at=t,
                mention_id=f"bg{seed}:{i}",
                author_id=f"a{rng.randrange(3000)}",
                followers=rng.randrange(50, 2000),
                negative=0.9 if label == "negative" else 0.1,
                label=label,
            )
        )
        i += 1
    return out


def burst(
    kind: str, start: float, hours: float, per_hour: float, seed: int = 7, target: str = "hospital"
) -> list[Observation]:
    """Injected episodes: firestorm, viral (positive), news (neutral), spam (two accounts)."""
    rng = random.Random(seed)
    out: list[Observation] = []
    n = int(hours * per_hour)
    for i in range(n):
        at = start + i * hours * HOUR / n
        if kind == "spam":
            author, label, reply = f"spam{i % 2}", "negative", None
        elif kind == "firestorm":
            negative = rng.random() < 0.85
            author = f"new{seed}:{i}"
            label = "negative" if negative else "neutral"
            reply = "root:1" if rng.random() < 0.5 else None
        else:
            author = f"new{seed}:{i}"
            label = {"viral": "positive", "news": "neutral"}[kind]
            reply = "root:2" if kind == "viral" and rng.random() < 0.5 else None
        out.append(
            Observation(
                target_id=target,
                at=at,
                mention_id=f"{kind}:{i}",
                author_id=author,
                followers=rng.randrange(20, 5000),
                negative=0.9 if label == "negative" else 0.05,
                label=label,
                in_reply_to=reply,
                topics=("hygiene",) if label == "negative" else (),
                url=f"https://example.invalid/{kind}/{i}",
            )
        )
    return out


def max_level(transitions: list[Transition]) -> int:
    return max((LEVEL[t.level] for t in transitions if t.kind != "resolved"), default=0)


EPISODE_AT = T0 + 4 * DAY + 12 * HOUR


@pytest.mark.parametrize(
    ("kind", "per_hour", "lowest", "highest"),
    [
        ("firestorm", 60.0, 2, 3),  # must page
        ("viral", 120.0, 0, 0),  # a positive post going viral: nothing at all
        ("news", 50.0, 0, 0),  # neutral coverage: nothing at all
        ("spam", 40.0, 0, 1),  # two accounts: never a page
    ],
)
def test_episode_kinds(kind: str, per_hour: float, lowest: int, highest: int) -> None:
    obs = background(1, 7) + burst(kind, EPISODE_AT, 2.0, per_hour)
    level = max_level(run(obs))
    assert lowest <= level <= highest, (kind, level)


def test_quiet_week_raises_nothing() -> None:
    assert run(background(2, 14)) == []


def test_firestorm_alert_explains_itself() -> None:
    trs = run(background(3, 7) + burst("firestorm", EPISODE_AT, 2.0, 60.0))
    raised = [t for t in trs if t.kind == "raised"]
    assert len(raised) == 1
    t = raised[0]
    assert t.alert_id == f"hospital:{int(t.at)}"
    assert EPISODE_AT < t.at < EPISODE_AT + HOUR  # early: within the first hour of the storm
    ev = t.evidence
    assert ev["observed"] > ev["expected"]
    assert 0.0 < ev["p_value"] < 1e-4
    # the share gate passes on all authors or on the newcomers alone (here: the newcomers, as
    # the burst of new negative authors pages within minutes, before the regulars are outvoted)
    assert ev["negative_share"] > ev["negative_share_usual"]
    assert ev["distinct_authors"] >= 4 and ev["new_authors"] >= 1
    assert ev["reach"] > 0 and ev["topics"] == ("hygiene",)
    assert ev["top_posts"] and ev["top_posts"][0]["url"].startswith("https://")
    assert ev["gates"]["negative_share"] and ev["gates"]["authors"]
    # levels only go up within one alert, then it resolves exactly once
    kinds = [x.kind for x in trs if x.alert_id == t.alert_id]
    assert kinds[0] == "raised" and kinds[-1] == "resolved" and kinds.count("resolved") == 1
    levels = [LEVEL[x.level] for x in trs if x.kind == "escalated"]
    assert levels == sorted(levels)


def test_evidence_is_json_and_matches_event_schema() -> None:
    from stormwatch_shared.events import Evidence

    trs = run(background(3, 7) + burst("firestorm", EPISODE_AT, 2.0, 60.0))
    for t in trs:
        Evidence.model_validate(t.evidence)
        json.dumps(t.evidence)


@pytest.mark.parametrize("cut", [0.3, 0.55, 0.62, 0.9])
def test_snapshot_restore_continues_identically(cut: float) -> None:
    obs = sorted(background(4, 7) + burst("firestorm", EPISODE_AT, 2.0, 60.0), key=lambda o: o.at)
    whole = run(obs)
    k = int(len(obs) * cut)
    first = Detector()
    out: list[Transition] = []
    for o in obs[:k]:
        out.extend(first.observe(o))
    state = json.loads(json.dumps(first.snapshot("hospital")))  # through JSON, as stored
    second = Detector()
    second.restore("hospital", state)
    for o in obs[k:]:
        out.extend(second.observe(o))
    out.extend(second.advance_all(obs[-1].at + DAY))
    assert out == whole


def test_targets_are_independent() -> None:
    a = background(5, 7, target="hospital") + burst("firestorm", EPISODE_AT, 2.0, 60.0)
    b = background(6, 7, target="paula", per_hour=1.0)
    alone = [t for t in run(a)]
    mixed = [t for t in run(a + b) if t.target_id == "hospital"]
    assert alone == mixed


def test_advance_closes_buckets_without_mentions() -> None:
    obs = background(8, 4.5 + 0.75 / 24) + burst("firestorm", EPISODE_AT, 0.75, 80.0)
    det = Detector()
    trs: list[Transition] = []
    for o in sorted(obs, key=lambda o: o.at):
        trs.extend(det.observe(o))
    kinds = [t.kind for t in trs]
    # raised, then escalated (once per level it climbs); nothing closes it without time
    assert kinds[0] == "raised" and set(kinds[1:]) <= {"escalated"}
    later = det.advance("hospital", EPISODE_AT + 8 * HOUR)
    assert [t.kind for t in later] == ["resolved"]
    assert det.advance("hospital", EPISODE_AT + 8 * HOUR) == []  # idempotent


def test_small_disorder_within_grace_changes_nothing() -> None:
    obs = sorted(background(9, 6) + burst("firestorm", EPISODE_AT, 2.0, 60.0), key=lambda o: o.at)
    swapped = list(obs)
    for i in range(0, len(swapped) - 1, 7):  # neighbours a few seconds apart swap places
        if swapped[i + 1].at - swapped[i].at < 30:
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    det = Detector()
    out: list[Transition] = []
    for o in swapped:
        out.extend(det.observe(o))
    out.extend(det.advance_all(obs[-1].at + DAY))
    assert out == run(obs)


@pytest.mark.parametrize("name", ["calm", "normal", "eager"])
def test_presets(name: str) -> None:
    cfg = preset(name)
    assert cfg.name == name
    assert cfg.watch_score <= cfg.warning_score <= cfg.critical_score


def test_presets_order_lead_time() -> None:
    obs = background(10, 7) + burst("firestorm", EPISODE_AT, 2.0, 30.0)
    first = {
        name: min(t.at for t in run(obs, preset(name)) if t.kind == "raised")
        for name in ("eager", "normal", "calm")
    }
    assert first["eager"] <= first["normal"] <= first["calm"]


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sensitivity"):
        preset("paranoid")


def test_warmup_blocks_alerts_on_a_new_target() -> None:
    obs = background(11, 2) + burst("firestorm", T0 + 12 * HOUR, 2.0, 60.0)
    assert run(obs) == []


# ---------------------------------------------------------------------------- properties


def _constant(per_bucket: int, days: float, label: str) -> list[Observation]:
    out = []
    step = 300.0 / per_bucket
    for i in range(int(days * DAY / step)):
        out.append(Observation("t", T0 + i * step, f"m{i}", f"a{i % 50}", 100, 0.9, label))
    return out


@settings(max_examples=12, deadline=None)
@given(
    per_bucket=st.integers(min_value=1, max_value=6),
    label=st.sampled_from(["negative", "neutral", "positive"]),
)
def test_constant_input_never_alerts(per_bucket: int, label: str) -> None:
    assert run(_constant(per_bucket, 3, label)) == []


def _score_after(obs: list[Observation], at: float) -> float:
    det = Detector(replace(DetectorConfig(), warmup_s=0.0))
    for o in sorted(obs, key=lambda o: o.at):
        if o.at < at - 300:  # everything up to the end of the judged bucket, nothing later
            det.observe(o)
    det.advance("hospital", at)
    return float(det.status("hospital")["score"])


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    extra=st.integers(min_value=1, max_value=12),
    hour=st.floats(min_value=30.0, max_value=60.0),
)
def test_more_negative_mentions_never_lower_the_score(seed: int, extra: int, hour: float) -> None:
    """Judged when the bucket holding the extra mentions closes; afterwards the baseline may
    (by design, winsorized) learn from them."""
    base = background(seed, 3)
    at = (T0 + hour * HOUR) // 300 * 300 + 10
    more = base + [
        Observation("hospital", at + i, f"x{i}", f"neg{i}", 10, 0.95, "negative")
        for i in range(extra)
    ]
    check = at - 10 + 300 + 60  # that bucket's end plus the grace period
    assert _score_after(more, check) >= _score_after(base, check)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000))
def test_renaming_authors_changes_nothing(seed: int) -> None:
    obs = (
        background(12, 6)
        + burst("firestorm", EPISODE_AT, 1.5, 50.0)
        + burst("spam", T0 + 3 * DAY, 1.0, 30.0)
    )
    names = sorted({o.author_id for o in obs})
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)
    rename = dict(zip(names, (f"x{n}" for n in shuffled), strict=True))
    renamed = [o.replace(author_id=rename[o.author_id]) for o in obs]
    assert run(renamed) == run(obs)


# ---------------------------------------------------------------------------- early re-test


@pytest.mark.parametrize(("seed", "per_hour"), [(20, 30.0), (21, 60.0), (22, 120.0)])
def test_arrival_retest_pages_no_later_than_bucket_close(seed: int, per_hour: float) -> None:
    obs = background(seed, 7) + burst("firestorm", EPISODE_AT, 2.0, per_hour, seed=seed)
    closes_only = run(obs, replace(DetectorConfig(), retest_on_arrival=False))
    early = run(obs, DetectorConfig())

    def first(trs: list[Transition], level: int) -> float:
        return min(t.at for t in trs if t.kind != "resolved" and LEVEL[t.level] >= level)

    for level in (1, 2):
        assert first(early, level) <= first(closes_only, level)
    # a re-test pages at the arrival that tipped it, not at a bucket boundary
    times = {o.at for o in obs}
    assert any(t.at in times for t in early if t.kind != "resolved")
    assert max_level(early) == max_level(closes_only)


def test_arrival_retest_keeps_benign_episodes_quiet() -> None:
    for kind, per_hour in (("viral", 120.0), ("news", 50.0), ("spam", 40.0)):
        obs = background(23, 7) + burst(kind, EPISODE_AT, 2.0, per_hour)
        assert max_level(run(obs)) <= (1 if kind == "spam" else 0), kind


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    x=st.floats(min_value=0.0, max_value=40.0),
    open_buckets=st.integers(min_value=1, max_value=2),
)
def test_peek_is_the_close_that_would_follow(seed: int, x: float, open_buckets: int) -> None:
    """Peeking at still-open buckets gives the window test their close would give."""
    from stormwatch_alerting.domain.baseline import BaselineParams, EvidenceStream

    rng = random.Random(seed)
    a = EvidenceStream(BaselineParams())
    b = EvidenceStream(BaselineParams())
    for _ in range(rng.randrange(1, 60)):
        v, m = float(rng.randrange(0, 4)), rng.uniform(0.1, 2.0)
        a.push(v, m, learn=True)
        b.push(v, m, learn=True)
    extra = [(x / open_buckets, 1.0)] * open_buckets
    peeked = a.peek(extra)
    floored = a.peek(extra, floor=3.0)
    closed = None
    for v, m in extra:
        closed = b.push(v, m, learn=False)
    assert closed is not None
    assert peeked.score == pytest.approx(closed.score, abs=1e-9)
    assert peeked.observed == pytest.approx(closed.observed, abs=1e-9)
    if peeked.score >= 3.0:
        assert floored.score == peeked.score
    else:
        assert floored.score <= peeked.score


def test_a_stream_state_of_other_window_lengths_is_refused_whole() -> None:
    """A state written with other ``scales`` must not half-load: the ring and CUSUM of one
    configuration beside the sums of another would judge nonsense as if it were history."""
    from stormwatch_alerting.domain.baseline import BaselineParams, EvidenceStream

    stream = EvidenceStream(BaselineParams())
    for v in (1.0, 0.0, 3.0, 2.0):
        stream.push(v, 1.0, learn=True)
    before = stream.to_dict()
    other = EvidenceStream(replace(BaselineParams(), scales=(6, 12)))
    other.push(9.0, 1.0, learn=True)
    with pytest.raises(ValueError):
        stream.load(other.to_dict())
    assert stream.to_dict() == before


def test_a_profile_of_another_length_is_refused_whole() -> None:
    """Hour-of-day and hour-of-week profiles have 24 and 168 cells; a state with other
    lengths is refused before anything changes, not at the first update that reads it."""
    from stormwatch_alerting.domain.baseline import BaselineParams, SeasonalBaseline

    base = SeasonalBaseline(BaselineParams())
    for k in range(30):
        base.update(T0 + k * 300.0, float(k % 4), 100.0)
    before = base.to_dict()
    for key, n in (("day_c", 23), ("week_e", 169)):
        broken = {**before, key: [1.0] * n, "level_num": 99.0}
        with pytest.raises(ValueError, match="per profile"):
            base.load(broken)
        assert base.to_dict() == before
    restored = SeasonalBaseline(BaselineParams())
    restored.load(before)
    assert restored.to_dict() == before
    assert restored.expected(T0 + 7 * 3600.0) == base.expected(T0 + 7 * 3600.0)


def test_a_stream_restored_from_its_dict_continues_bit_for_bit() -> None:
    from stormwatch_alerting.domain.baseline import BaselineParams, EvidenceStream

    rng = random.Random(5)
    a = EvidenceStream(BaselineParams())
    for _ in range(50):
        a.push(float(rng.randrange(0, 5)), rng.uniform(0.2, 3.0), learn=True)
    b = EvidenceStream(BaselineParams())
    b.load(json.loads(json.dumps(a.to_dict())))
    for _ in range(50):
        v, m = float(rng.randrange(0, 9)), rng.uniform(0.2, 3.0)
        ta, tb = a.push(v, m, learn=True), b.push(v, m, learn=True)
        assert ta == tb
    assert a.to_dict() == b.to_dict()


@settings(max_examples=200, deadline=None)
@given(
    x=st.floats(min_value=0.01, max_value=5000.0),
    mean=st.floats(min_value=0.001, max_value=2000.0),
    size=st.floats(min_value=0.25, max_value=500.0),
)
def test_nb_score_bound_is_an_upper_bound(x: float, mean: float, size: float) -> None:
    from stormwatch_alerting.domain.nbstats import nb_score, nb_score_bound

    assert nb_score_bound(x, mean, size) >= nb_score(x, mean, size) - 1e-9


@pytest.mark.parametrize("seed", [30, 31])
def test_daily_sweep_forgets_every_stale_author(seed: int) -> None:
    """The sweep stops early along value order; with disorder it must still miss nothing."""
    cfg = replace(DetectorConfig(), new_author_horizon_s=DAY)
    obs = sorted(background(seed, 5, per_hour=40.0, neg=0.3), key=lambda o: o.at)
    for i in range(0, len(obs) - 1, 3):  # late by up to the grace period
        if obs[i + 1].at - obs[i].at < 50:
            obs[i], obs[i + 1] = obs[i + 1], obs[i]
    det = Detector(cfg)
    for o in obs:
        det.observe(o)
    snap = det.snapshot("hospital")
    day_b = int(DAY // cfg.bucket_s)
    swept = (snap["next_close"] - 1) // day_b * day_b  # the last bucket that ran the sweep
    horizon = int(cfg.new_author_horizon_s // cfg.bucket_s)
    assert snap["last_cnt"] and snap["last_neg"]
    assert min(snap["last_cnt"].values()) >= swept - horizon
    assert min(snap["last_neg"].values()) >= swept - cfg.gate_window_buckets
    assert set(snap["known"]) == set(snap["last_cnt"])


@pytest.mark.parametrize(("seed", "grace_s"), [(32, 60.0), (33, 900.0)])
def test_daily_sweep_forgets_exactly_the_stale_authors(seed: int, grace_s: float) -> None:
    """Each sweep, checked against a full scan: no stale author kept, no recent one dropped
    (arrivals late by up to the grace period, also a grace longer than a bucket)."""
    cfg = replace(DetectorConfig(), new_author_horizon_s=DAY, grace_s=grace_s)
    rng = random.Random(seed)
    obs = sorted(background(seed, 4, per_hour=40.0, neg=0.3), key=lambda o: o.at)
    obs = [o.replace(at=o.at - rng.uniform(0.0, grace_s)) for o in obs]  # watermark: sorted
    # a compiled Detector's methods cannot be wrapped per instance: the sources, interpreted
    det = interpreted_detector_module().Detector(cfg)
    horizon = int(cfg.new_author_horizon_s // cfg.bucket_s)
    real_forget = det._forget
    sweeps = []

    def checked_forget(target: object, k: int) -> None:
        keep_cnt = {a for a, v in target.last_cnt.items() if v >= k - horizon}  # type: ignore[attr-defined]
        keep_neg = {a for a, v in target.last_neg.items() if v >= k - cfg.gate_window_buckets}  # type: ignore[attr-defined]
        dropped = len(target.last_cnt) - len(keep_cnt)  # type: ignore[attr-defined]
        real_forget(target, k)  # type: ignore[arg-type]
        assert set(target.last_cnt) == keep_cnt  # type: ignore[attr-defined]
        assert set(target.last_neg) == keep_neg  # type: ignore[attr-defined]
        assert set(target.known) == keep_cnt  # type: ignore[attr-defined]
        sweeps.append(dropped)

    det._forget = checked_forget  # type: ignore[method-assign]
    for o in obs:
        det.observe(o)
    assert len(sweeps) >= 3 and sum(sweeps[1:]) > 0  # sweeps ran and forgot someone


@pytest.mark.parametrize("offset", [-3, -1, 0, 1, 4])
def test_restore_around_an_arrival_retest_continues_identically(offset: int) -> None:
    """Cut right around the arrival that pages early: open buckets and caches must survive."""
    obs = sorted(background(24, 7) + burst("firestorm", EPISODE_AT, 2.0, 60.0), key=lambda o: o.at)
    whole = run(obs)
    raised_at = next(t.at for t in whole if t.kind == "raised")
    k = next(i for i, o in enumerate(obs) if o.at == raised_at) + 1 + offset
    assert run_with_restore(obs, k, "hospital") == whole


def test_a_live_snapshot_is_the_snapshot_without_the_copies() -> None:
    """The changelog writer's ``live`` snapshot serializes to the same JSON as the copying
    one, and the copying one is still independent of the detector's later state."""
    det = Detector(DetectorConfig())
    obs = sorted(background(34, 3, per_hour=40.0, neg=0.3), key=lambda o: o.at)
    for o in obs[: len(obs) // 2]:
        det.observe(o)
    live, copied = det.snapshot("hospital", live=True), det.snapshot("hospital")
    assert json.dumps(live) == json.dumps(copied)
    assert live["known"] is not copied["known"] and copied["known"]
    frozen = json.dumps(copied)
    for o in obs[len(obs) // 2 :]:
        det.observe(o)
    assert json.dumps(copied) == frozen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_quoted_post_is_quotable_and_most_mentions_are_not(seed: int) -> None:
    """The service keeps texts only where ``quotable`` says so; a top post outside it would
    reach the crisis team without its text."""
    rng = random.Random(seed)
    storm = []
    for o in burst("firestorm", EPISODE_AT, 2.0, 80.0, seed=seed):
        # soft negativity across the threshold, and crisis topics lifting mild posts
        fields = {f: getattr(o, f) for f in OBSERVATION_FIELDS}
        fields["negative"] = rng.uniform(0.3, 0.95)
        fields["topics"] = o.topics if rng.random() < 0.5 else ()
        storm.append(Observation(**fields))
    obs = background(seed, 7) + storm
    det = Detector()
    quoted: set[str] = set()
    for o in sorted(obs, key=lambda o: o.at):
        for t in det.observe(o):
            quoted.update(str(p["mention_id"]) for p in t.evidence["top_posts"])
    quotable = {o.mention_id for o in obs if det.quotable(o)}
    assert quoted and quoted <= quotable
    lifted = [o for o in storm if o.topics and o.negative < 0.5]
    assert lifted and all(det.quotable(o) for o in lifted)  # the topic floor counts
    assert len(quotable) < len(obs) / 3  # the regulars' ordinary posts are not kept


@pytest.mark.parametrize(
    ("first", "opening", "later", "counted"),
    [
        (0.7, 0.0, 0.5, 0.5),  # the window gone by must not cap the new one
        (0.7, 0.2, 0.5, 0.5),  # 0.2 counted, then 0.3 more
        (0.3, 0.0, 0.0, 0.0),
    ],
)
def test_an_authors_negativity_starts_again_in_a_new_gate_window(
    first: float, opening: float, later: float, counted: float
) -> None:
    """An author adds their highest negativity once per gate window: a window opened by a
    post of no negativity at all starts from 0, not from the highest of the window before."""
    det = Detector(preset("normal"))
    cfg = det.config
    start = T0 // cfg.bucket_s * cfg.bucket_s
    gone = start + cfg.gate_window_buckets * cfg.bucket_s + cfg.bucket_s

    def post(at: float, i: int, negative: float) -> Observation:
        return Observation("t", at, f"m{i}", "a1", 10, negative, "neutral")

    det.observe(post(start + 10, 1, first))
    det.observe(post(gone + 10, 2, opening))
    det.observe(post(gone + 20, 3, later))
    (bucket,) = [b for _k, b in det.snapshot("t")["open"]]
    assert bucket[7] == pytest.approx(counted)  # ``ys``: the bucket's soft negative evidence
