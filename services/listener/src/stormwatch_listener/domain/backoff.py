"""Reconnect delays, as X documents them for its streams, usable by every source.

Three kinds of failure back off differently, because they mean different things: a network
blip heals in seconds (linear, small steps); an HTTP error means the server is unwell or
refuses us (exponential from 5 s); 429 means we are over a quota, and hammering it gets the
account blocked (exponential from a minute). The delay is computed, never slept here, so the
runner can sleep on an injected clock and tests can assert the exact sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FailureKind = Literal["network", "http", "rate_limited"]


@dataclass(frozen=True)
class BackoffPolicy:
    network_step_s: float = 0.25
    network_max_s: float = 16.0
    http_start_s: float = 5.0
    http_max_s: float = 320.0
    rate_limit_start_s: float = 60.0
    rate_limit_max_s: float = 960.0
    """X says only "start at a minute and double"; the cap keeps a long outage from turning
    into hours of silence once the quota is back."""


X_POLICY = BackoffPolicy()
"""X's filtered-stream reconnect rules (handling disconnections guide)."""


class Backoff:
    """Per-connection backoff state; ``reset`` after a connection delivered data."""

    def __init__(self, policy: BackoffPolicy = X_POLICY) -> None:
        self.policy = policy
        self._attempts: dict[FailureKind, int] = {"network": 0, "http": 0, "rate_limited": 0}

    def reset(self) -> None:
        for kind in self._attempts:
            self._attempts[kind] = 0

    def next_delay(self, kind: FailureKind, retry_after_s: float | None = None) -> float:
        """The wait before the next attempt; a server's Retry-After wins when it is longer."""
        p = self.policy
        n = self._attempts[kind]
        self._attempts[kind] = n + 1
        if kind == "network":
            delay = min(p.network_step_s * (n + 1), p.network_max_s)
        elif kind == "http":
            delay = min(p.http_start_s * 2.0**n, p.http_max_s)
        else:
            delay = min(p.rate_limit_start_s * 2.0**n, p.rate_limit_max_s)
        if retry_after_s is not None and retry_after_s > delay:
            delay = retry_after_s
        return delay
