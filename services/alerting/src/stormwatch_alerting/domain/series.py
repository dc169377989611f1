"""Volume-only detection over a plain count series (``stormwatch detect-series``).

Same statistics as the mention detector, without sentiment or authors: each record is one
bucket; its expected value comes from the seasonal baseline, the evidence from NB window
tails and the NB CUSUM. An alert is raised on the record where the evidence first crosses
the threshold; it stays open (and the baseline frozen, at most ``freeze_max_s``) until the
evidence has been near baseline for ``resolve_after_s``. Only the raising record is flagged,
so one long anomaly is one alert.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from stormwatch_alerting.domain.baseline import (
    BaselineParams,
    EvidenceStream,
    SeasonalBaseline,
    WindowTest,
)


@dataclass(frozen=True)
class SeriesConfig:
    threshold: float = 5.0
    """Evidence (``-log10 p`` or CUSUM in log10 units) at which an alert is raised."""
    resolve_score: float = 1.3
    resolve_cusum: float = 2.5
    """The CUSUM (log10 units) must also have drained: a level shift stays one alert."""
    resolve_after_s: float = 2 * 3600.0
    freeze_max_s: float = 12 * 3600.0
    warmup_s: float = 24 * 3600.0
    baseline: BaselineParams = field(default_factory=BaselineParams)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    score: float
    """Evidence in log10 units (0 = ordinary)."""
    anomaly_score: float
    """The evidence squashed to 0..1: 0.5 exactly at the alert threshold."""
    alert: bool
    expected: float


class SeriesDetector:
    """Streaming: feed records in time order with :meth:`update`."""

    def __init__(self, config: SeriesConfig | None = None, bucket_s: float | None = None) -> None:
        cfg = config or SeriesConfig()
        if bucket_s is not None:
            cfg = replace(cfg, baseline=replace(cfg.baseline, bucket_s=bucket_s))
        self.config = cfg
        self._base = SeasonalBaseline(cfg.baseline)
        self._ev = EvidenceStream(cfg.baseline)
        self._first: float | None = None
        self.last_test: WindowTest | None = None
        self._open_since: float | None = None
        self._quiet = 0
        self._resolve_n = max(1, math.ceil(cfg.resolve_after_s / cfg.baseline.bucket_s))

    def update(self, at: float, value: float) -> SeriesPoint:
        """``at`` is the record's end time (epoch s), ``value`` its count."""
        cfg = self.config
        bs = cfg.baseline.bucket_s
        start = at - bs
        if self._first is None:
            self._first = at
        mu = self._base.expected(start)
        frozen = self._open_since is not None and at - self._open_since < cfg.freeze_max_s
        test = self._ev.push(value, mu, learn=not frozen)
        self.last_test = test
        if not frozen:
            sd = self._ev.bucket_sd(mu)
            self._base.update(start, value, mu + cfg.baseline.winsor_z * sd + 1.0)
        score = max(test.score, test.cusum)
        alert = False
        if at - self._first < cfg.warmup_s:
            self._ev.cusum = 0.0  # evidence against a baseline still being learned is no evidence
        else:
            if self._open_since is None:
                if score >= cfg.threshold:
                    self._open_since = at
                    self._quiet = 0
                    alert = True
            else:
                calm = test.score < cfg.resolve_score and test.cusum < cfg.resolve_cusum
                self._quiet = self._quiet + 1 if calm else 0
                if self._quiet >= self._resolve_n:
                    self._open_since = None
        return SeriesPoint(score, score / (score + cfg.threshold), alert, mu)
