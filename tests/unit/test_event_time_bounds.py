"""Which event times the alerting service refuses before they reach the detector.

Both bounds exist because the detector runs on event time: a date far ahead moves a
target's clock there, a date decades back makes its next post close every bucket since.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from stormwatch_alerting.app import _check_event_time
from stormwatch_alerting.settings import AlertingSettings
from stormwatch_shared.codec import DecodeError

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC).timestamp()
EARLIEST = AlertingSettings().min_event_time.timestamp()
LATEST = NOW + AlertingSettings().max_future_s


def _at(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("at", "refused_naming"),
    [
        (NOW, None),
        (_at(2026, 3, 14, 9, 30), None),  # the drills' dates
        (_at(2000, 1, 1), None),  # the bound itself is accepted
        (LATEST, None),
        (LATEST + 1, "ALERTING_MAX_FUTURE_S"),
        (_at(2099, 1, 1), "ALERTING_MAX_FUTURE_S"),
        (_at(1999, 12, 31, 23, 59), "ALERTING_MIN_EVENT_TIME"),
        (0.0, "ALERTING_MIN_EVENT_TIME"),  # a missing date read as zero
        (-86_400.0, "ALERTING_MIN_EVENT_TIME"),
    ],
)
def test_event_time_bounds(at: float, refused_naming: str | None) -> None:
    if refused_naming is None:
        _check_event_time(at, EARLIEST, LATEST)
        return
    with pytest.raises(DecodeError) as info:
        _check_event_time(at, EARLIEST, LATEST)
    reason = str(info.value)
    assert refused_naming in reason
    assert datetime.fromtimestamp(at, UTC).date().isoformat() in reason
    assert "check the source" in reason


def test_the_lower_bound_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALERTING_MIN_EVENT_TIME", "2010-06-01T00:00:00+02:00")
    bound = AlertingSettings().min_event_time.timestamp()
    assert bound == _at(2010, 5, 31, 22, 0)
    with pytest.raises(DecodeError):
        _check_event_time(_at(2005, 1, 1), bound, LATEST)
