"""Negative-binomial tail probabilities in pure Python.

Mention counts are overdispersed: a busy afternoon or a retweet cascade makes the variance
grow faster than the mean, so a Poisson tail would page on every ordinary burst. We judge a
count ``x`` against NB(mean ``m``, size ``r``) with variance ``m + m**2 / r``.

Everything is computed in log space because a real storm produces tails far below the
smallest float (a 10-sigma burst over a few hundred expected mentions), and the score we
report is ``-log10 p``. No SciPy: the detector is pure and per-bucket work must stay small.
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPS = 3e-14
_MAX_ITER = 20_000
LN10 = math.log(10.0)


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz evaluation).

    Converges quickly for ``x < (a + 1) / (a + b + 2)``; callers use the symmetry
    ``I_x(a, b) = 1 - I_{1-x}(b, a)`` otherwise.
    """
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if -_TINY < d < _TINY:
        d = _TINY
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITER):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if -_TINY < d < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if -_TINY < c < _TINY:
            c = _TINY
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if -_TINY < d < _TINY:
            d = _TINY
        c = 1.0 + aa / c
        if -_TINY < c < _TINY:
            c = _TINY
        d = 1.0 / d
        step = d * c
        h *= step
        if -_EPS < step - 1.0 < _EPS:
            break
    return h


def log_betainc(a: float, b: float, x: float) -> float:
    """``log I_x(a, b)``, the log of the regularized incomplete beta function."""
    if x <= 0.0:
        return -math.inf
    if x >= 1.0:
        return 0.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return log_front + math.log(_beta_cf(a, b, x)) - math.log(a)
    # Complement branch: the complement is small, so 1 - it is well conditioned.
    comp = math.exp(log_front + math.log(_beta_cf(b, a, 1.0 - x)) - math.log(b))
    return math.log1p(-comp) if comp < 1.0 else -math.inf


def nb_log_sf(x: float, mean: float, size: float) -> float:
    """``log P(X >= x)`` for X ~ NB(mean, size); 0.0 (p = 1) when ``x <= 0``.

    Uses ``P(X >= k) = I_{1-p}(k, r)`` with ``p = r / (r + m)``. ``x`` may be fractional
    (soft counts); the formula interpolates smoothly between integers.
    """
    if x <= 0.0:
        return 0.0
    if mean <= 0.0:
        return -745.0  # any mention where none can be expected: as surprising as a float allows
    q = mean / (mean + size)  # 1 - p
    return log_betainc(x, size, q)


def nb_score(x: float, mean: float, size: float) -> float:
    """Surprise ``-log10 P(X >= x)``: 0 for ordinary counts, 5 for a one-in-100 000 excess."""
    return -nb_log_sf(x, mean, size) / LN10


def nb_llr(x: float, m0: float, m1: float, size: float) -> float:
    """Log-likelihood ratio of NB(m1, r) against NB(m0, r) for one count (the CUSUM step)."""
    return x * math.log(m1 * (m0 + size) / (m0 * (m1 + size))) - size * math.log(
        (m1 + size) / (m0 + size)
    )


def nb_score_bound(x: float, mean: float, size: float) -> float:
    """An upper bound of ``nb_score`` at the cost of three ``lgamma`` calls.

    The recurrence ``I_q(a, b) = I_q(a + 1, b) + q**a (1 - q)**b / (a B(a, b))`` holds for
    real ``a > 0``, so its second term (the NB "probability of exactly x", also for soft x)
    is a lower bound of the tail ``P(X >= x)``. A caller that only needs to know whether a
    score reaches a threshold can skip the continued fraction whenever this bound is below it.
    """
    if x <= 0.0:
        return 0.0
    if mean <= 0.0:
        return 745.0 / LN10
    q = mean / (mean + size)
    log_term = (
        math.lgamma(x + size)
        - math.lgamma(x + 1.0)
        - math.lgamma(size)
        + x * math.log(q)
        + size * math.log1p(-q)
    )
    return -log_term / LN10 if log_term < 0.0 else 0.0
