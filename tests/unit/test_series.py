"""Volume-only mode: the NB tail itself, the streaming detector and the CSV tool."""

from __future__ import annotations

import csv
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
from stormwatch_alerting.domain.nbstats import nb_llr, nb_log_sf
from stormwatch_alerting.domain.series import SeriesConfig, SeriesDetector
from stormwatch_alerting.series_cli import detect_series


def nb_sf_by_summation(x: int, m: float, r: float) -> float:
    """Reference: 1 - sum of the NB pmf below x, straight from its definition."""
    p = r / (r + m)
    below = sum(
        math.exp(
            math.lgamma(k + r)
            - math.lgamma(r)
            - math.lgamma(k + 1)
            + r * math.log(p)
            + k * math.log1p(-p)
        )
        for k in range(x)
    )
    return 1.0 - below


@pytest.mark.parametrize(
    ("x", "m", "r"),
    [
        (1, 0.5, 2.0),
        (5, 0.3, 2.0),
        (3, 1.0, 10.0),
        (100, 50.0, 20.0),
        (40, 10.0, 1.0),
        (2, 5.0, 3.0),
    ],
)
def test_nb_tail_matches_its_definition(x: int, m: float, r: float) -> None:
    assert math.exp(nb_log_sf(x, m, r)) == pytest.approx(nb_sf_by_summation(x, m, r), rel=1e-9)


def test_nb_tail_is_finite_far_below_float_range() -> None:
    lp = nb_log_sf(5000, 50.0, 20.0)
    assert math.isfinite(lp) and lp < -745  # p itself would underflow


def test_llr_sign() -> None:
    assert nb_llr(0, 2.0, 4.0, 5.0) < 0 < nb_llr(10, 2.0, 4.0, 5.0)


T0 = 1_425_000_000.0


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:  # exp(-lam) underflows; the normal approximation is exact enough here
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p < limit:
            return k
        k += 1


@pytest.mark.parametrize("level", [3.0, 40.0, 400.0])
def test_ordinary_series_raises_nothing_and_a_spike_raises_once(level: float) -> None:
    rng = random.Random(1)
    det = SeriesDetector(bucket_s=300)
    alerts = []
    for i in range(12 * 24 * 10):
        hour = (i // 12) % 24
        lam = level * (0.5 + (hour >= 8) * 0.8)
        spike = 2000 <= i < 2012
        value = poisson(rng, lam * (12 if spike else 1))
        p = det.update(T0 + i * 300, value)
        assert 0.0 <= p.anomaly_score < 1.0
        if p.alert:
            alerts.append(i)
    assert len(alerts) == 1 and 2000 <= alerts[0] < 2012


def test_detect_series_keeps_rows_and_order(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    rows = [
        (f"2015-03-0{1 + i // 288} {(i % 288) // 12:02d}:{(i % 12) * 5:02d}:00", 10 + i % 7)
        for i in range(1500)
    ]
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value"])
        w.writerows(rows)
    out = tmp_path / "out.csv"
    detect_series(src, out)
    with out.open(newline="") as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == ["timestamp", "value", "anomaly_score", "alert"]
    assert [(r["timestamp"], int(r["value"])) for r in got] == rows
    assert {r["alert"] for r in got} <= {"0", "1"}


def test_cli_registration() -> None:
    import argparse

    from stormwatch_alerting.series_cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["detect-series", "a.csv", "b.csv"])
    assert args.input == Path("a.csv") and callable(args.func)


def _daily_series(
    rng: random.Random, level: float, days: int, boosts: dict[int, float]
) -> list[int]:
    """Poisson counts with a day/night cycle; ``boosts`` multiplies the rate at given records."""
    out = []
    for i in range(12 * 24 * days):
        hour = (i // 12) % 24
        lam = level * (0.5 + (hour >= 8) * 0.8) * boosts.get(i, 1.0)
        out.append(poisson(rng, lam))
    return out


def _alerts(values: list[int], **cfg: float) -> list[int]:
    det = SeriesDetector(SeriesConfig(**cfg), bucket_s=300)  # type: ignore[arg-type]
    return [i for i, v in enumerate(values) if det.update(T0 + i * 300, v).alert]


@pytest.mark.parametrize(
    ("gap_records", "expected_alerts"),
    [(72, 1), (12 * 30, 2)],  # 6 h apart: same episode; 30 h apart: two episodes
)
def test_refractory_period_turns_one_episode_into_one_alert(
    gap_records: int, expected_alerts: int
) -> None:
    first = 2400
    boosts = {i: 10.0 for i in range(first, first + 6)}
    boosts |= {i: 10.0 for i in range(first + gap_records, first + gap_records + 6)}
    alerts = _alerts(_daily_series(random.Random(3), 40.0, 12, boosts))
    assert len(alerts) == expected_alerts
    assert first <= alerts[0] < first + 6


def test_sustained_rise_is_caught_by_the_hourly_scale() -> None:
    # +30 % for three hours: no single record is extreme, the hourly mean is
    boosts = {i: 1.3 for i in range(2400, 2436)}
    values = _daily_series(random.Random(5), 200.0, 12, boosts)
    assert [a for a in _alerts(values) if 2400 <= a < 2436]
    assert not [a for a in _alerts(values, scales=(1,)) if 2400 <= a < 2436]


def test_scores_do_not_depend_on_the_scale_of_the_counts() -> None:
    # The log-scale core is scale-free: the same series at 100 times the volume scores alike.
    values = _daily_series(random.Random(7), 300.0, 10, {2500: 8.0})
    cfg = SeriesConfig(slot_scale=0.0)
    small = SeriesDetector(cfg, bucket_s=300)
    large = SeriesDetector(cfg, bucket_s=300)
    for i, v in enumerate(values):
        a = small.update(T0 + i * 300, v)
        b = large.update(T0 + i * 300, v * 100)
        assert a.alert == b.alert
        assert a.score == pytest.approx(b.score, abs=0.05)


def test_alerts_do_not_depend_on_the_scale_of_the_counts() -> None:
    # The time-of-day spread discounts counting noise, which does depend on the volume (at
    # 100 times the mentions the same relative wander is no longer counting noise), so the
    # default's scores move a little with the scale; its alerts on this series do not.
    values = _daily_series(random.Random(7), 300.0, 10, {2500: 8.0})
    small = SeriesDetector(bucket_s=300)
    large = SeriesDetector(bucket_s=300)
    got = [
        (small.update(T0 + i * 300, v).alert, large.update(T0 + i * 300, v * 100).alert)
        for i, v in enumerate(values)
    ]
    assert all(a == b for a, b in got)
    assert [i for i, (a, _) in enumerate(got) if a] == [2500]


def _scores(values: list[float], cfg: SeriesConfig | None = None) -> list[tuple[float, bool]]:
    det = SeriesDetector(cfg, bucket_s=300)
    out = []
    for i, v in enumerate(values):
        p = det.update(T0 + i * 300, v)
        out.append((p.score, p.alert))
    return out


@pytest.mark.parametrize("level", [0.0, 1.0, 7.0, 5000.0])
def test_constant_series_never_alerts(level: float) -> None:
    assert not any(a for _, a in _scores([level] * (12 * 24 * 9)))


@pytest.mark.parametrize(
    ("level", "factor", "at"),
    [(10.0, 40.0, 2700), (40.0, 15.0, 2300), (400.0, 8.0, 2900)],
)
def test_clear_spike_alerts_at_the_spike(level: float, factor: float, at: int) -> None:
    values = _daily_series(random.Random(11), level, 12, {at: factor})
    assert _alerts(values) == [at]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cfg",
    [SeriesConfig(), SeriesConfig(slot_scale=0.0), SeriesConfig(scales=(1, 3, 12), threshold=4.0)],
)
def test_no_look_ahead_appending_records_never_changes_earlier_outputs(
    cfg: SeriesConfig,
) -> None:
    values = _daily_series(random.Random(13), 30.0, 11, {2500: 9.0, 2501: 6.0, 2900: 1.5})
    full = _scores(values, cfg)  # type: ignore[arg-type]
    for cut in (700, 2501, 2950):
        assert _scores(values[:cut], cfg) == full[:cut]  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [17, 18, 19, 20])
def test_time_of_day_spread_keeps_wild_nights_quiet_but_not_a_daytime_spike(seed: int) -> None:
    # Nights wander 2.5 times as far as days on the log scale: with one all-day scale the
    # ordinary nights look like bursts; judged by their own slot (the correction is bounded:
    # at most 1.25 times the all-day scale) they do not. Single records only: the
    # time-of-day spread is a single-record correction.
    rng = random.Random(seed)
    values = []
    for i in range(12 * 24 * 12):
        night = (i // 12) % 24 < 8
        values.append(200.0 * math.exp(rng.gauss(0.0, 0.25 if night else 0.1)))
    spike = 12 * 24 * 10 + 12 * 14  # day 10, 14:00
    values[spike] *= 6.0
    single = SeriesConfig(scales=(1,))
    with_slot = [i for i, (_, a) in enumerate(_scores(values, single)) if a]
    all_day = [i for i, (_, a) in enumerate(_scores(values, replace(single, slot_scale=0.0))) if a]
    assert with_slot == [spike]
    assert spike in all_day and len(all_day) > 1


def test_detect_series_output_of_a_prefix_is_a_prefix_of_the_output(tmp_path: Path) -> None:
    values = _daily_series(random.Random(23), 30.0, 9, {2300: 12.0, 2301: 8.0})
    rows = [
        (f"2015-03-{1 + i // 288:02d} {(i % 288) // 12:02d}:{(i % 12) * 5:02d}:00", v)
        for i, v in enumerate(values)
    ]

    def run(n: int) -> list[dict[str, str]]:
        src, out = tmp_path / f"in{n}.csv", tmp_path / f"out{n}.csv"
        with src.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value"])
            w.writerows(rows[:n])
        detect_series(src, out)
        with out.open(newline="") as fh:
            return list(csv.DictReader(fh))

    full = run(len(rows))
    assert any(r["alert"] == "1" for r in full)
    for n in (30, 60, 2301, 2400):
        assert run(n) == full[:n]
