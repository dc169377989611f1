"""Seasonal baseline and evidence for one count stream, updated once per closed bucket.

Expected count per bucket = level x profile(hour of week). Both parts are gamma-Poisson
ratio estimators with exponential forgetting, so they need no tuning to the scale of the
counts: a hospital with three mentions an hour and a brand with three hundred per five
minutes use the same code and the same prior strengths (expressed in expected mentions).

- level: decayed sum of counts over decayed sum of profile factors (Poisson MLE of the
  level given the profile). It adapts slowly (half-life in days).
- profile: hour-of-day factors shrunk towards 1, and hour-of-week factors shrunk towards the
  hour-of-day factor. With little history the week profile simply *is* the day profile; as
  weeks accumulate the weekday/weekend difference emerges.
- dispersion: for every window length we test, a decayed moment estimate of the NB
  overdispersion of window sums (``var = m + phi * m**2``). Estimating it at the window scale
  (not per bucket) captures correlated bursts that per-bucket dispersion would miss.

A storm must not teach the baseline that storms are normal: the owner freezes updates while
an alert is open, and every update is winsorized so one unalerted burst moves it only a little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from stormwatch_alerting.domain.nbstats import LN10, nb_llr, nb_score, nb_score_bound

WEEK_S = 7 * 24 * 3600
HOUR_S = 3600


@dataclass(frozen=True, slots=True)
class BaselineParams:
    bucket_s: float = 300.0
    level_half_life_s: float = 3 * 24 * 3600.0
    """How fast the level follows drift; storms last hours, so days keeps them out."""
    day_profile_half_life_days: float = 10.0
    week_profile_half_life_weeks: float = 3.0
    day_prior: float = 30.0
    """Prior strength of the hour-of-day factor (=1), in expected mentions of that hour."""
    week_prior: float = 60.0
    """Prior strength pulling an hour-of-week factor towards its hour-of-day factor."""
    level_prior_count: float = 1.0
    level_prior_buckets: float = 12.0
    winsor_z: float = 4.0
    """Updates see at most mean + z * sd + 1: one burst shifts the baseline only a little."""
    scales: tuple[int, ...] = (6, 12, 36)
    """Window lengths in buckets that are tested (with the default 5 min: 30 min, 1 h, 3 h)."""
    dispersion_half_life_days: float = 7.0
    dispersion_prior: float = 0.05
    dispersion_prior_weight: float = 2.0
    """Prior weight in units of squared expected window count (weak once counts are high)."""
    dispersion_winsor_z: float = 4.0
    """Window sums above mean + z * sd are clipped before they update the dispersion."""
    dispersion_min: float = 0.01
    dispersion_max: float = 4.0
    cusum_ratio: float = 2.0
    """CUSUM alternative: the rate multiplied by this factor."""
    cusum_cap: float = 60.0
    """Upper bound of the CUSUM statistic (nats) so a long storm does not take days to decay."""
    cusum_block: int = 12
    """The CUSUM steps once per block of this many buckets (1 h), on the block's sum judged
    with the dispersion of that window length: deviations within an hour are correlated, and
    a per-bucket CUSUM that assumes otherwise mistakes a slightly wrong profile for a storm."""
    cusum_step_cap: float = LN10
    """Most one bucket may add to the CUSUM (nats): a lone spike is the window tests' job,
    the CUSUM is for excesses that persist (a robust, winsorized CUSUM)."""


class _Cell:
    """Two running figures of one hour (count, expectation) or of one held bucket (count,
    mean), changed in place. Compiled, its fields are C doubles: in a ``list[float]`` each
    update boxed a new float and each read fetched one from wherever it had been allocated:
    the reads (``CPyList_GetItem``) were the largest single item of the bench workload's
    bucket closes, 17 % (``perf``, 2026-12-03), 6 % as cells."""

    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a = 0.0
        self.b = 0.0


def _cells(n: int) -> list[_Cell]:
    return [_Cell() for _ in range(n)]


class SeasonalBaseline:
    """Expected count per bucket: level x profile factor for the bucket's hour of week."""

    __slots__ = (
        "_day",
        "_lam_day",
        "_lam_level",
        "_lam_week",
        "_week",
        "level_den",
        "level_num",
        "p",
    )

    def __init__(self, p: BaselineParams) -> None:
        self.p = p
        self.level_num = 0.0
        self.level_den = 0.0
        # per hour of day and of week: decayed count (a) and decayed expectation (b)
        self._day = _cells(24)
        self._week = _cells(168)
        # annotated: mypy types float ** float as Any, and mypyc then boxed every update's
        # arithmetic with these decays (PyNumber_Multiply); as floats they are C doubles
        self._lam_level: float = 0.5 ** (p.bucket_s / p.level_half_life_s)
        visits_per_hour = HOUR_S / p.bucket_s
        self._lam_day: float = 0.5 ** (1.0 / (p.day_profile_half_life_days * visits_per_hour))
        self._lam_week: float = 0.5 ** (1.0 / (p.week_profile_half_life_weeks * visits_per_hour))

    def level(self) -> float:
        p = self.p
        return (self.level_num + p.level_prior_count) / (self.level_den + p.level_prior_buckets)

    def factor(self, start: float) -> float:
        how = int((start % WEEK_S) // HOUR_S)  # epoch 0 was a Thursday; any fixed phase works
        hod = how % 24
        p = self.p
        day = self._day[hod]
        week = self._week[how]
        f_day = (day.a + p.day_prior) / (day.b + p.day_prior)
        return (week.a + p.week_prior * f_day) / (week.b + p.week_prior)

    def expected(self, start: float) -> float:
        return self.level() * self.factor(start)

    def update(
        self,
        start: float,
        count: float,
        cap: float,
        factor: float | None = None,
        level: float | None = None,
    ) -> None:
        """Learn from one closed bucket; ``cap`` is the winsorizing bound from the caller.

        ``factor`` and ``level`` may be passed as the caller just read them for the same
        bucket (``factor(start)``, ``level()``): a close needs both anyway.
        """
        c = count if count < cap else cap
        how = int((start % WEEK_S) // HOUR_S)
        hod = how % 24
        f = self.factor(start) if factor is None else factor
        lvl = self.level() if level is None else level
        self.level_num = self._lam_level * self.level_num + c
        self.level_den = self._lam_level * self.level_den + f
        ld = self._lam_day
        day = self._day[hod]
        day.a = ld * day.a + c
        day.b = ld * day.b + lvl
        lw = self._lam_week
        week = self._week[how]
        week.a = lw * week.a + c
        week.b = lw * week.b + lvl

    def to_dict(self) -> dict[str, Any]:
        return {
            "level_num": self.level_num,
            "level_den": self.level_den,
            "day_c": [cell.a for cell in self._day],
            "day_e": [cell.b for cell in self._day],
            "week_c": [cell.a for cell in self._week],
            "week_e": [cell.b for cell in self._week],
        }

    def load(self, d: dict[str, Any]) -> None:
        day = _load_cells(d["day_c"], d["day_e"], 24)  # checked before anything changes
        week = _load_cells(d["week_c"], d["week_e"], 168)
        self.level_num = float(d["level_num"])
        self.level_den = float(d["level_den"])
        self._day = day
        self._week = week


def _load_cells(a: list[Any], b: list[Any], n: int) -> list[_Cell]:
    """Cells from a snapshot's two lists. Lists of another length are refused: with plain
    lists a short one failed only at the first update of a missing hour, a long one was
    taken silently."""
    if len(a) != n or len(b) != n:
        raise ValueError(f"expected {n} values per profile, got {len(a)} and {len(b)}")
    cells = _cells(n)
    for cell, x, y in zip(cells, a, b, strict=True):
        cell.a = float(x)
        cell.b = float(y)
    return cells


@dataclass(frozen=True, slots=True)
class WindowTest:
    """The strongest window at one bucket close: what the alert text shows."""

    score: float
    """-log10 p of the best window, Bonferroni-corrected for the number of windows tried."""
    p_value: float
    observed: float
    expected: float
    buckets: int
    cusum: float
    """CUSUM statistic in log10 units (comparable with ``score``)."""


class _Scale:
    """One window length's running state. Fields of a compiled class are plain C doubles,
    where a ``list[float]`` per quantity boxed and type-checked every value it held: those
    lists were most of a quiet target's bucket close (py-spy --native, 2026-12-03)."""

    __slots__ = ("cand", "cand_r", "disp_a", "disp_d", "i", "phi", "s", "sum_m", "sum_x")

    def __init__(self, i: int, s: int) -> None:
        self.i = i
        self.s = s
        self.sum_x = 0.0
        self.sum_m = 0.0
        self.disp_a = 0.0
        self.disp_d = 0.0
        self.phi = 0.0
        # whether the last close left this window above its expectation (a candidate for
        # the test), and the NB size it is then judged with: the dispersion before it learnt
        self.cand = False
        self.cand_r = 0.0


class EvidenceStream:
    """Windows, NB dispersion and a CUSUM over (count, expected) pairs of closed buckets.

    Gives the evidence that counts are above their expectation. It does not own the
    expectation: the caller passes the expected value so the same machinery serves total
    volume, negative mentions and plain count series.
    """

    __slots__ = (
        "_block_i",
        "_block_m",
        "_block_n",
        "_block_x",
        "_lam_disp",
        "_log_n",
        "_pending",
        "_prior_w",
        "_ring",
        "_ring_cap",
        "_ring_head",
        "_ring_n",
        "_scales",
        "cusum",
        "p",
    )

    def __init__(self, p: BaselineParams) -> None:
        self.p = p
        n = len(p.scales)
        # The last (count, expected) pairs of the longest window, oldest first from
        # ``_ring_head - _ring_n``: a circular list of cells (a: count, b: expected),
        # overwritten in place (a deque of tuples cost a generic item lookup and a tuple
        # unpack per window and close, 15 % of a sparse bench's closes, 2026-12-03).
        cap = max(p.scales)
        self._ring_cap = cap
        self._ring = _cells(cap)
        self._ring_n = 0
        self._ring_head = 0
        self._scales = tuple(_Scale(i, s) for i, s in enumerate(p.scales))
        self.cusum = 0.0
        self._block_x = 0.0
        self._block_m = 0.0
        self._block_n = 0
        days = p.dispersion_half_life_days * 24 * HOUR_S / p.bucket_s
        self._lam_disp: float = 0.5 ** (1.0 / days)  # a float, not Any: see SeasonalBaseline
        self._prior_w = p.dispersion_prior * p.dispersion_prior_weight
        self._block_i = self._block_scale()
        self._log_n = math.log10(n)
        # the dispersion of each window changes only when it learns, but is read several
        # times per close: kept computed (same formula, so the same floats)
        for sc in self._scales:
            sc.phi = self._dispersion(sc)
        self._pending = PendingTest(self._scales, p.scales, self._log_n)

    def _dispersion(self, sc: _Scale) -> float:
        p = self.p
        w = p.dispersion_prior_weight
        phi = (sc.disp_a + p.dispersion_prior * w) / (sc.disp_d + w)
        return min(max(phi, p.dispersion_min), p.dispersion_max)

    def dispersion(self, i: int) -> float:
        return self._scales[i].phi

    def _block_scale(self) -> int:
        """Index of the tested window length closest to the CUSUM block."""
        scales = self.p.scales
        return min(range(len(scales)), key=lambda i: abs(scales[i] - self.p.cusum_block))

    def bucket_sd(self, mean: float) -> float:
        return math.sqrt(mean + self.dispersion(0) * mean * mean)

    def push(self, x: float, m: float, *, learn: bool) -> WindowTest:
        """Add one closed bucket; ``learn`` is False while an alert freezes the baseline."""
        return self.push_deferred(x, m, learn=learn).resolve()

    def push_deferred(self, x: float, m: float, *, learn: bool) -> PendingTest:
        """``push`` with the tail probabilities left for later (see ``PendingTest``).

        Every state change happens here, exactly as in ``push``; only the window scores,
        which change no state, wait until someone needs them.
        """
        p = self.p
        ring = self._ring
        cap, head = self._ring_cap, self._ring_head
        scales = self._scales
        # the CUSUM step below is judged with the dispersion from before this bucket
        r_block = scales[self._block_i].phi
        # attributes of compiled classes, read as C doubles (a tuple of them was unboxed and
        # type-checked six times per close)
        lam, wz, w = self._lam_disp, p.dispersion_winsor_z, p.dispersion_prior_weight
        prior, lo, hi = self._prior_w, p.dispersion_min, p.dispersion_max
        # slide every window: add the new bucket, drop the one that falls out of it; a
        # window is tested once it is full (the ring never holds more than the longest one),
        # and its dispersion then learns from it (each window's own, from its state before
        # this bucket: one pass does both)
        n_before = self._ring_n
        n_now = n_before + 1
        for sc in scales:
            s = sc.s
            sx = sc.sum_x + x
            sm = sc.sum_m + m
            if n_before >= s:
                j = head - s  # the bucket that leaves this window
                if j < 0:
                    j += cap
                out = ring[j]
                sx -= out.a
                sm -= out.b
            sc.sum_x = sx
            sc.sum_m = sm
            sc.cand = False
            if n_now >= s and sm > 0.0:
                ph = sc.phi
                if sx > sm:
                    sc.cand = True  # its sum is rounded where resolved
                    sc.cand_r = 1.0 / ph
                if learn:
                    lim = sm + wz * math.sqrt(sm + ph * sm * sm) + 1.0
                    cx = sx if sx < lim else lim
                    dx = cx - sm  # a product: compiled, ``** 2`` boxed both and called pow()
                    a = lam * sc.disp_a + (dx * dx - sm)
                    d = lam * sc.disp_d + sm * sm
                    sc.disp_a = a
                    sc.disp_d = d
                    ph = (a + prior) / (d + w)  # as in ``_dispersion``
                    sc.phi = lo if ph < lo else (hi if ph > hi else ph)
        cell = ring[head]  # read above where it leaves the longest window
        cell.a = x
        cell.b = m
        head += 1
        self._ring_head = 0 if head == cap else head
        if n_before < cap:
            self._ring_n = n_now
        # CUSUM per block against a rate-ratio alternative (NB likelihood ratio)
        self._block_x += x
        self._block_m += m
        self._block_n += 1
        if self._block_n >= p.cusum_block:
            bx, bm = self._block_x, self._block_m
            self._block_x = self._block_m = 0.0
            self._block_n = 0
            if bm > 0.0:
                step = nb_llr(bx, bm, bm * p.cusum_ratio, 1.0 / r_block)
                if step > p.cusum_step_cap:
                    step = p.cusum_step_cap
                c = self.cusum + step
                self.cusum = 0.0 if c < 0.0 else (c if c < p.cusum_cap else p.cusum_cap)
        pending = self._pending
        pending.reset(n_now, self.cusum)
        return pending

    def peek(self, extra: list[tuple[float, float]], floor: float = 0.0) -> WindowTest:
        """The window tests as if the still-open buckets ``extra`` closed now; no state changes.

        Callers pass each open bucket's full expectation while its count is still growing, so
        a partial bucket can only understate the evidence: a test that passes now also passes
        at the close, it is only known earlier. The CUSUM steps per block and is reported as is.
        Windows whose score provably stays below ``floor`` (corrected, as reported) are not
        computed exactly: the result is exact whenever its score reaches ``floor``.
        """
        p = self.p
        ring = self._ring
        cap, head = self._ring_cap, self._ring_head
        n = self._ring_n
        k = len(extra)
        ex = em = 0.0
        for x, m in extra:
            ex += x
            em += m
        best = 0.0
        best_i = 0
        obs = [0.0] * len(p.scales)
        exp = [0.0] * len(p.scales)
        raw_floor = floor + math.log10(len(p.scales))
        for i, s in enumerate(p.scales):
            if n + k < s:
                continue
            win = self._scales[i]
            sx = win.sum_x + ex
            sm = win.sum_m + em
            # the k oldest buckets of the closed window fall out when the open ones join it
            for j in range(max(0, n - s), min(n, n - s + k)):
                q = head - n + j  # the j-th oldest bucket held
                if q < 0:
                    q += cap
                sx -= ring[q].a
                sm -= ring[q].b
            obs[i] = sx
            exp[i] = sm
            if sm <= 0.0 or sx <= sm:
                continue
            sx = round(sx, 9)
            r = 1.0 / win.phi
            if nb_score_bound(sx, sm, r) < raw_floor:
                continue
            sc = nb_score(sx, sm, r)
            if sc > best:
                best, best_i = sc, i
        n_tests = len(p.scales)
        return WindowTest(
            score=max(0.0, best - math.log10(n_tests)) if best > 0.0 else 0.0,
            p_value=min(1.0, 10.0 ** (-best) * n_tests) if best > 0.0 else 1.0,
            observed=obs[best_i],
            expected=exp[best_i],
            buckets=p.scales[best_i],
            cusum=self.cusum / LN10,
        )

    def window(self, scale_index: int) -> tuple[float, float]:
        sc = self._scales[scale_index]
        return sc.sum_x, sc.sum_m

    def _ring_order(self) -> list[int]:
        """Positions of the held buckets in the ring lists, oldest first."""
        cap, n = self._ring_cap, self._ring_n
        start = self._ring_head - n
        return [(start + j) % cap for j in range(n)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ring": [[self._ring[q].a, self._ring[q].b] for q in self._ring_order()],
            "disp_a": [sc.disp_a for sc in self._scales],
            "disp_d": [sc.disp_d for sc in self._scales],
            "cusum": self.cusum,
            "block": [self._block_x, self._block_m, self._block_n],
            "sum_x": [sc.sum_x for sc in self._scales],
            "sum_m": [sc.sum_m for sc in self._scales],
        }

    def load(self, d: dict[str, Any]) -> None:
        # checked before anything changes: a state of other window lengths is refused whole
        per_scale = list(
            zip(self._scales, d["disp_a"], d["disp_d"], d["sum_x"], d["sum_m"], strict=True)
        )
        pairs = [(float(x), float(m)) for x, m in d["ring"]][-self._ring_cap :]
        self._ring = _cells(self._ring_cap)
        for cell, (x, m) in zip(self._ring, pairs, strict=False):
            cell.a = x
            cell.b = m
        self._ring_n = len(pairs)
        self._ring_head = len(pairs) % self._ring_cap
        self.cusum = float(d["cusum"])
        bx, bm, bn = d["block"]
        self._block_x, self._block_m, self._block_n = float(bx), float(bm), int(bn)
        # the running sums are stored, not recomputed: float addition order matters and a
        # restored target must continue bit for bit like one that never stopped
        for sc, a, dd, sx, sm in per_scale:
            sc.disp_a, sc.disp_d, sc.sum_x, sc.sum_m = float(a), float(dd), float(sx), float(sm)
            sc.phi = self._dispersion(sc)


class PendingTest:
    """The window tests of the latest close of one stream, with their tail probabilities not
    yet computed.

    A quiet target closes a bucket every five minutes and nobody reads most of those scores:
    the caller only needs to know that they stay below a threshold, which ``bound`` tells
    from three ``lgamma`` calls per window. ``resolve`` gives exactly the ``WindowTest``
    that ``push`` returns, whenever it is asked for before the stream's next close: it reads
    the windows' sums and the sizes they are judged with, which only a close changes.

    One per stream, reset by each close: a new object, its candidate list and a tuple of
    boxed floats per candidate were a fifth of a quiet target's close (allocation, freeing
    and the collector; ``perf``, 2026-12-03). Whoever needs a close's result after the next
    close must ``resolve`` it first (the detector keeps only the latest, ``_Target.test``).
    """

    __slots__ = ("_done", "_log_n", "_n_now", "_scales", "_windows", "cusum")

    def __init__(self, windows: tuple[_Scale, ...], scales: tuple[int, ...], log_n: float) -> None:
        self._windows = windows
        self._scales = scales
        self._log_n = log_n
        self._n_now = 0
        self.cusum = 0.0
        """CUSUM statistic in nats, as ``EvidenceStream.cusum`` was at the close."""
        self._done: WindowTest | None = None

    def reset(self, n_now: int, cusum: float) -> None:
        self._n_now = n_now
        self.cusum = cusum
        self._done = None

    def bound(self) -> float:
        """An upper bound of the resolved ``score`` (corrected, log10 units).

        Taken at the unrounded window sum: ``round(sx, 9)`` moves it by at most 5e-10, which
        moves the bound far less than the slack its callers leave (``_BOUND_SLACK``); the
        rounding, a decimal conversion, was ~12 % of a quiet target's bucket close.
        """
        best = 0.0
        for sc in self._windows:
            if sc.cand:
                b = nb_score_bound(sc.sum_x, sc.sum_m, sc.cand_r)
                if b > best:
                    best = b
        return max(0.0, best - self._log_n) if best > 0.0 else 0.0

    def resolve(self) -> WindowTest:
        done = self._done
        if done is not None:
            return done
        windows = self._windows
        best = 0.0
        best_i = 0
        best_x, best_m = windows[0].sum_x, windows[0].sum_m  # as best_i = 0
        for w in windows:
            if w.cand:
                sx, sm = w.sum_x, w.sum_m
                sc = nb_score(round(sx, 9), sm, w.cand_r)
                if sc > best:
                    best, best_i, best_x, best_m = sc, w.i, sx, sm
        n_tests = len(self._scales)
        s_best = self._scales[best_i]
        full = self._n_now >= s_best
        done = self._done = WindowTest(
            score=max(0.0, best - self._log_n) if best > 0.0 else 0.0,
            p_value=min(1.0, 10.0 ** (-best) * n_tests) if best > 0.0 else 1.0,
            observed=best_x if full else 0.0,
            expected=best_m if full else 0.0,
            buckets=s_best,
            cusum=self.cusum / LN10,
        )
        return done
