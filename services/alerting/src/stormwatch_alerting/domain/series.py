"""Volume-only detection over a plain count series (``stormwatch detect-series``).

Mention volume of a brand is heavy-tailed and strongly daily: a 5-minute count can triple
on an ordinary evening, and one retweet cascade makes a mean/variance model (even a
negative-binomial one) either blind or noisy depending on how the dispersion was estimated.
So the volume mode judges every record against its own history with order statistics on a
log scale, which need no distributional assumption and no scale-dependent constant (the one
count-dependent term is the Poisson counting noise of step 4, which is not fitted):

1. ``v = log(1 + count)``: multiplicative bursts become additive, a brand with 3 and one
   with 3,000 mentions per bucket look alike.
2. Seasonal location: the median of ``v`` at the same time of day (within ``slot_s``
   centred on the record) over the trailing ``history_days``. A median of ~35 values ignores
   the one-off bursts in it; centring the slot keeps a steep morning ramp from looking like
   a burst at a fixed slot boundary.
3. Residual ``r = v - location``; the scale is the interquartile range of the residuals of
   the trailing ``scale_days`` (/1.349, the normal-consistent IQR), which is as robust as the
   MAD but updates incrementally. The same is done for the mean residual of the last
   ``scales`` records, so a sustained rise (a level shift over an hour) is judged against how
   much hourly means usually wander, not against single-record noise.
4. Spread by time of day: a single record is also judged against the spread of its own
   slot (the IQR of the same ~35 values the seasonal median came from), and the larger of the
   two spreads counts. Busy and quiet hours wander differently on the log scale, so one
   all-day scale makes every lively hour look like a burst. Only the part of the slot spread
   beyond counting noise counts (Poisson: sd of log(1 + X) is about sqrt(mu) / (1 + mu)):
   with a handful of mentions per bucket the slot holds a few distinct small counts whose
   IQR is all noise, and it would blind a small brand to its bursts; the all-day scale
   already holds that noise. And the slot spread may widen the all-day scale at most
   ``slot_max`` (1.25) times: it comes from a small sample.
5. Score = the largest robust z over the scales. Heavy tails are handled by the threshold
   itself: robust z of 6 is far beyond what a normal tail would need, but ordinary bursts
   of tweet volume reach 4-5.
6. An alert is raised on the record whose score first crosses ``threshold``; afterwards a
   refractory period (``refractory_s``) suppresses further alerts: one episode, one page.

Every figure at record t uses records up to t only (streaming, no look-ahead).
No history, no alert: the first ``warmup_s`` and until ``min_history`` residuals exist.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass, replace

_DAY_S = 86400.0
_IQR_TO_SD = 1.349


@dataclass(frozen=True)
class SeriesConfig:
    bucket_s: float = 300.0
    threshold: float = 6.0
    """Robust z (IQR-scaled, log scale) at which an alert is raised."""
    scales: tuple[int, ...] = (1, 12)
    """Record counts over which the mean residual is tested (5 min and 1 h by default)."""
    history_days: float = 7.0
    """Trailing horizon of the seasonal medians (short: the level of a brand moves)."""
    scale_days: float = 14.0
    """Trailing horizon of the residual quantiles (longer: how far a series wanders changes
    more slowly than its level, and the quartiles get twice the sample)."""
    slot_s: float = 1500.0
    """Width of the time-of-day neighbourhood (centred on the record) of the seasonal median."""
    refractory_s: float = 24 * 3600.0
    """After an alert no new one for this long: a storm is one page, not thirty."""
    warmup_s: float = 2 * 24 * 3600.0
    """One day of history gives one value per time of day: too few to trust a median."""
    min_history: int = 50
    """Residuals needed before a scale is trusted."""
    slot_scale: float = 1.0
    """Weight of the time-of-day spread for single records (0 = one all-day scale only)."""
    slot_max: float = 1.25
    """The time-of-day spread widens the all-day scale at most this many times."""
    min_slot: int = 10
    """Values in the time-of-day slot needed before its spread is used."""


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    score: float
    """Largest robust z over the tested scales (0 = ordinary or below)."""
    anomaly_score: float
    """The score squashed to 0..1: 0.5 exactly at the alert threshold."""
    alert: bool
    expected: float
    """The seasonal median count of this record's slot."""


class _Rolling:
    """A bounded window of floats kept sorted as well, for O(log n) quantiles."""

    __slots__ = ("cap", "fifo", "sorted")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.fifo: deque[float] = deque()
        self.sorted: list[float] = []

    def push(self, v: float) -> None:
        self.fifo.append(v)
        insort(self.sorted, v)
        if len(self.fifo) > self.cap:
            old = self.fifo.popleft()
            del self.sorted[bisect_left(self.sorted, old)]

    def quantile(self, q: float) -> float:
        s = self.sorted
        return s[min(len(s) - 1, int(q * len(s)))]

    def __len__(self) -> int:
        return len(self.sorted)


class SeriesDetector:
    """Streaming: feed records in time order with :meth:`update`."""

    def __init__(self, config: SeriesConfig | None = None, bucket_s: float | None = None) -> None:
        cfg = config or SeriesConfig()
        if bucket_s is not None:
            cfg = replace(cfg, bucket_s=bucket_s)
        self.config = cfg
        n_hist = max(1, round(cfg.scale_days * _DAY_S / cfg.bucket_s))
        self._n_phases = max(1, round(_DAY_S / cfg.bucket_s))
        days = max(1, round(cfg.history_days))
        self._phases: list[deque[float]] = [deque(maxlen=days) for _ in range(self._n_phases)]
        self._half = max(0, round(cfg.slot_s / cfg.bucket_s / 2))
        self._res = {k: _Rolling(n_hist) for k in cfg.scales}
        self._recent: deque[float] = deque(maxlen=max(cfg.scales))
        self._first: float | None = None
        self._last_alert: float | None = None

    def update(self, at: float, value: float) -> SeriesPoint:
        """``at`` is the record's end time (epoch s), ``value`` its count."""
        cfg = self.config
        if self._first is None:
            self._first = at
        v = math.log1p(value if value > 0.0 else 0.0)
        start = at - cfg.bucket_s
        phase = int((start % _DAY_S) // cfg.bucket_s) % self._n_phases
        n_ph = self._n_phases
        ref = sorted(
            x
            for d in range(phase - self._half, phase + self._half + 1)
            for x in self._phases[d % n_ph]
        )
        score = 0.0
        expected = 0.0
        if ref:
            nr = len(ref)
            loc = ref[nr // 2]
            expected = math.expm1(loc)
            slot_sd = 0.0
            if cfg.slot_scale > 0.0 and nr >= cfg.min_slot:
                spread = (ref[(3 * nr) // 4] - ref[nr // 4]) / _IQR_TO_SD
                # Counting noise: sd of log(1 + X), X ~ Poisson(mu), is about sqrt(mu)/(1 + mu).
                count_sd = math.sqrt(max(expected, 0.25)) / (1.0 + expected)
                excess = spread * spread - count_sd * count_sd
                slot_sd = cfg.slot_scale * math.sqrt(excess) if excess > 0.0 else 0.0
            recent = self._recent
            recent.append(v - loc)
            n = len(recent)
            for k, hist in self._res.items():
                if n < k:
                    continue
                m = sum(recent[n - k + j] for j in range(k)) / k if k > 1 else recent[-1]
                if len(hist) >= cfg.min_history:
                    sd = (hist.quantile(0.75) - hist.quantile(0.25)) / _IQR_TO_SD
                    if k == 1 and slot_sd > sd:
                        sd = min(slot_sd, cfg.slot_max * sd)
                    z = (m - hist.quantile(0.5)) / (sd if sd > 1e-3 else 1e-3)
                    if z > score:
                        score = z
                hist.push(m)
        self._phases[phase].append(v)
        alert = False
        if (
            at - self._first >= cfg.warmup_s
            and score >= cfg.threshold
            and (self._last_alert is None or at - self._last_alert >= cfg.refractory_s)
        ):
            alert = True
            self._last_alert = at
        return SeriesPoint(score, score / (score + cfg.threshold), alert, expected)
