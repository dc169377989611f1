"""Routing as code: validation names the entry; rotations, overrides and quiet hours."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from stormwatch_alerting.domain.routing import RoutingError, parse_routing

pytestmark = pytest.mark.delivery

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "routing.example.yaml"


def example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def test_example_file_is_valid_and_routes_every_level() -> None:
    cfg = parse_routing(example())
    for target_kind in ("organisation", "ambassador"):
        for level in ("watch", "warning", "critical"):
            assert cfg.route_for("hospital", target_kind, level) is not None


def _set(doc: dict, path: list, value: object) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["routes", 1, "steps", 0, "recipients"],
            ["person:nobody"],
            "routes[1] (warning).steps[0].recipients[0]: unknown person 'nobody'",
        ),
        (
            ["routes", 2, "steps", 0, "channels"],
            ["fax"],
            "routes[2] (critical).steps[0].channels[0]: unknown channel 'fax'",
        ),
        (["people", 0, "phone"], "0151 123", "people[0].phone: phone must be E.164"),
        (["people", 1, "language"], "fr", "people[1].language: unsupported language 'fr'"),
        (
            ["rotations", 0, "members"],
            ["anna", "zoe"],
            "rotations[0].members[1]: unknown person 'zoe'",
        ),
        (
            ["quiet_hours", "levels"],
            ["watch", "critical"],
            "quiet_hours.levels: quiet hours never apply to critical",
        ),
        (["ambassadors", 0, "consent"], "yes", "ambassadors[0].consent: say consent: true"),
        (
            ["routes", 1, "ack_timeout_minutes"],
            None,
            "routes[1] (warning).steps[0]: set wait_minutes",
        ),
        (
            ["routes", 0, "steps", 0, "broadcast"],
            ["nowhere"],
            "routes[0] (watch).steps[0].broadcast[0]: unknown chat target 'nowhere'",
        ),
        (["timezone"], "Mars/Olympus", "timezone: unknown time zone"),
    ],
)
def test_validation_errors_name_the_entry(path: list, value: object, message: str) -> None:
    with pytest.raises(RoutingError) as err:
        parse_routing(_set(example(), path, value))
    assert message in str(err.value)


def test_a_level_without_route_is_refused() -> None:
    doc = example()
    doc["routes"] = [r for r in doc["routes"] if r["name"] != "critical"]
    with pytest.raises(RoutingError, match="no route handles level 'critical'"):
        parse_routing(doc)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-01-05T08:00:00+01:00", "anna"),  # first shift starts
        ("2026-01-12T07:59:00+01:00", "anna"),  # one minute before hand-over
        ("2026-01-12T08:00:00+01:00", "dora"),
        ("2026-01-19T12:00:00+01:00", "ben"),
        ("2026-01-26T12:00:00+01:00", "anna"),  # wraps around
        ("2026-03-10T03:00:00+01:00", "dora"),  # override (anna's week)
        ("2026-03-11T08:00:00+01:00", "anna"),  # override over
    ],
)
def test_on_call_rotation_with_override(at: str, expected: str) -> None:
    cfg = parse_routing(example())
    assert cfg.rotations["comms"].on_call(datetime.fromisoformat(at)) == expected


@pytest.mark.parametrize(
    ("local", "level", "channel", "quiet"),
    [
        ("2026-03-10T23:30:00+01:00", "warning", "sms", True),
        ("2026-03-10T23:30:00+01:00", "warning", "email", False),
        ("2026-03-10T23:30:00+01:00", "critical", "sms", False),
        ("2026-03-10T06:59:00+01:00", "watch", "push", True),
        ("2026-03-10T07:00:00+01:00", "warning", "sms", False),
        ("2026-07-10T21:30:00+00:00", "warning", "sms", True),  # 23:30 CEST in summer
    ],
)
def test_quiet_hours_hold_back_pagers_for_low_levels_only(
    local: str, level: str, channel: str, quiet: bool
) -> None:
    cfg = parse_routing(example())
    at = datetime.fromisoformat(local).astimezone(UTC)
    assert cfg.quiet(level, channel, at) is quiet


def test_recipients_expand_without_repeats_and_follow_the_clock() -> None:
    cfg = parse_routing(example())
    at = datetime(2026, 1, 13, 12, tzinfo=UTC)  # dora on call
    got = cfg.resolve(["oncall:comms", "role:deputy", "team:kommunikation"], at)
    assert got == ("dora", "ben", "anna", "clara")
