"""Who hears about an alert, on which channel, and when: routing as code.

The routing file is parsed once at start into frozen values; any mistake is reported with
the path of the offending entry (``routes[1].steps[0].recipients[2]``) so an operator can
fix it before the first real alert, not during it. Everything here is pure: the instant
to evaluate (rotations, quiet hours) is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LEVELS = ("watch", "warning", "critical")
PERSON_CHANNELS = frozenset({"email", "sms", "push"})
LANGUAGES = frozenset({"de", "en"})
CHAT_KINDS = frozenset({"slack", "mattermost", "teams"})


class RoutingError(ValueError):
    """A routing file that cannot be trusted; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    language: str = "de"
    ntfy_topic: str | None = None


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Override:
    person: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Rotation:
    """Members take turns for ``shift`` each, counted from ``start``; overrides win."""

    id: str
    members: tuple[str, ...]
    start: datetime
    shift: timedelta
    overrides: tuple[Override, ...] = ()

    def on_call(self, at: datetime) -> str:
        for override in reversed(self.overrides):  # the latest entry wins on overlap
            if override.start <= at < override.end:
                return override.person
        turns = int((at - self.start) / self.shift)
        return self.members[turns % len(self.members)]


@dataclass(frozen=True, slots=True)
class Step:
    """One rung of an escalation chain; ``wait`` is how long it may stay unacknowledged."""

    recipients: tuple[str, ...]
    channels: tuple[str, ...]
    broadcast: tuple[str, ...] = ()
    wait: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    levels: frozenset[str]
    steps: tuple[Step, ...]
    target_ids: frozenset[str] = frozenset()
    target_kinds: frozenset[str] = frozenset()
    needs_ack: bool = True

    def matches(self, target_id: str, target_kind: str, level: str) -> bool:
        return (
            level in self.levels
            and (not self.target_ids or target_id in self.target_ids)
            and (not self.target_kinds or target_kind in self.target_kinds)
        )


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Night-time calm for low levels: pager channels are held back, email and chat go."""

    start: time
    end: time
    levels: frozenset[str]
    channels: frozenset[str]

    def active(self, local: time) -> bool:
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    name: str
    start: datetime
    end: datetime
    levels: frozenset[str]
    target_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Ambassador:
    target_id: str
    person: str
    consent: bool
    guideline_url: str
    contact: str
    """A recipient reference (``oncall:...``, ``person:...``) for 'who in communications'."""
    channels: tuple[str, ...] = ("email", "push", "sms")


@dataclass(frozen=True, slots=True)
class ChatTarget:
    id: str
    kind: str
    url: str | None
    url_env: str | None


@dataclass(frozen=True, slots=True)
class SmsCap:
    per_hour: int = 30
    per_day: int = 200


@dataclass(frozen=True)
class RoutingConfig:
    timezone: str
    people: Mapping[str, Person]
    teams: Mapping[str, Team]
    roles: Mapping[str, str]
    rotations: Mapping[str, Rotation]
    routes: tuple[Route, ...]
    quiet_hours: QuietHours | None = None
    maintenance: tuple[MaintenanceWindow, ...] = ()
    ambassadors: Mapping[str, Ambassador] = field(default_factory=dict)
    chat: Mapping[str, ChatTarget] = field(default_factory=dict)
    sms_cap: SmsCap = SmsCap()
    sms_bundle_window: timedelta = timedelta(minutes=10)
    digest_interval: timedelta = timedelta(hours=1)
    digest_recipients: tuple[str, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def route_for(self, target_id: str, target_kind: str, level: str) -> Route | None:
        """First matching route wins, as in Alertmanager: order the file specific-first."""
        for route in self.routes:
            if route.matches(target_id, target_kind, level):
                return route
        return None

    def resolve(self, refs: Sequence[str], at: datetime) -> tuple[str, ...]:
        """Turn recipient references into person ids as of ``at`` (order kept, no repeats)."""
        out: list[str] = []
        for ref in refs:
            kind, _, name = ref.partition(":")
            if kind == "person":
                ids: Sequence[str] = (name,)
            elif kind == "team":
                ids = self.teams[name].members
            elif kind == "role":
                ids = (self.roles[name],)
            else:  # oncall
                ids = (self.rotations[name].on_call(at),)
            out.extend(i for i in ids if i not in out)
        return tuple(out)

    def quiet(self, level: str, channel: str, at: datetime) -> bool:
        """Whether ``channel`` is held back for ``level`` at ``at``; never for critical."""
        qh = self.quiet_hours
        if qh is None or level == "critical" or level not in qh.levels:
            return False
        return channel in qh.channels and qh.active(at.astimezone(self.zone).time())

    def night(self, at: datetime) -> bool:
        qh = self.quiet_hours
        return qh is not None and qh.active(at.astimezone(self.zone).time())


# --------------------------------------------------------------------------- parsing


class _Ctx:
    """Carries the path of the entry being read so every error names it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def at(self, key: str | int) -> _Ctx:
        if isinstance(key, int):
            return _Ctx(f"{self.path}[{key}]")
        return _Ctx(f"{self.path}.{key}" if self.path else key)

    def fail(self, message: str) -> RoutingError:
        return RoutingError(f"{self.path or 'routing'}: {message}")


def _map(value: Any, ctx: _Ctx) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ctx.fail(f"expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, ctx: _Ctx) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.fail(f"expected a list, got {type(value).__name__}")
    return value


def _str(m: Mapping[str, Any], key: str, ctx: _Ctx, default: str | None = None) -> str:
    value = m.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ctx.at(key).fail("required text missing" if value is None else "must be text")
    return value.strip()


def _opt_str(m: Mapping[str, Any], key: str, ctx: _Ctx) -> str | None:
    value = m.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise ctx.at(key).fail("must be text")
    return str(value).strip() or None


def _int(m: Mapping[str, Any], key: str, ctx: _Ctx, default: int, lo: int = 0) -> int:
    value = m.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ctx.at(key).fail(f"must be a whole number >= {lo}")
    return value


def _dt(value: Any, ctx: _Ctx) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ctx.fail(f"not an ISO timestamp: {value!r}") from exc
    if not isinstance(value, datetime):
        raise ctx.fail("expected a timestamp such as 2026-03-02T08:00:00+01:00")
    if value.tzinfo is None:
        raise ctx.fail("timestamp needs a timezone offset")
    return value.astimezone(UTC)


def _clock(value: Any, ctx: _Ctx) -> time:
    if isinstance(value, int):  # YAML reads 22:00 as sexagesimal 1320
        return time(value // 60 % 24, value % 60)
    if not isinstance(value, str):
        raise ctx.fail("expected HH:MM")
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise ctx.fail(f"expected HH:MM, got {value!r}") from exc


def _levels(value: Any, ctx: _Ctx, default: Sequence[str]) -> frozenset[str]:
    items = _list(value, ctx) if value is not None else list(default)
    if isinstance(value, str):
        items = [value]
    for i, item in enumerate(items):
        if item not in LEVELS:
            raise ctx.at(i).fail(f"unknown level {item!r} (watch, warning, critical)")
    return frozenset(items)


def _unique_id(m: Mapping[str, Any], ctx: _Ctx, seen: set[str], what: str) -> str:
    ident = _str(m, "id", ctx)
    if ident in seen:
        raise ctx.at("id").fail(f"duplicate {what} id {ident!r}")
    seen.add(ident)
    return ident


def parse_routing(data: Any) -> RoutingConfig:
    """Validate a routing document (already loaded from YAML) into a ``RoutingConfig``."""
    root = _map(data, _Ctx(""))
    ctx = _Ctx("")
    tz = _str(root, "timezone", ctx, "Europe/Berlin")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ctx.at("timezone").fail(f"unknown time zone {tz!r}") from exc

    people: dict[str, Person] = {}
    for i, raw in enumerate(_list(root.get("people"), ctx.at("people"))):
        c = ctx.at("people").at(i)
        p = _map(raw, c)
        pid = _unique_id(p, c, set(people), "person")
        lang = _str(p, "language", c, "de")
        if lang not in LANGUAGES:
            raise c.at("language").fail(f"unsupported language {lang!r} (de, en)")
        email = _opt_str(p, "email", c)
        if email is not None and ("@" not in email or " " in email):
            raise c.at("email").fail(f"not an email address: {email!r}")
        phone = _opt_str(p, "phone", c)
        if phone is not None and not (phone.startswith("+") and phone[1:].isdigit()):
            raise c.at("phone").fail(f"phone must be E.164 like +4915112345678, got {phone!r}")
        people[pid] = Person(
            pid, _str(p, "name", c), email, phone, lang, _opt_str(p, "ntfy_topic", c)
        )
    if not people:
        raise ctx.at("people").fail("at least one person is needed")

    def person_ref(value: Any, c: _Ctx) -> str:
        if not isinstance(value, str) or value not in people:
            raise c.fail(f"unknown person {value!r}")
        return value

    teams: dict[str, Team] = {}
    for i, raw in enumerate(_list(root.get("teams"), ctx.at("teams"))):
        c = ctx.at("teams").at(i)
        t = _map(raw, c)
        tid = _unique_id(t, c, set(teams), "team")
        members = tuple(
            person_ref(m, c.at("members").at(j))
            for j, m in enumerate(_list(t.get("members"), c.at("members")))
        )
        if not members:
            raise c.at("members").fail("a team needs members")
        teams[tid] = Team(tid, _str(t, "name", c, tid), members)

    roles_raw = _map(root.get("roles") or {}, ctx.at("roles"))
    roles = {str(k): person_ref(v, ctx.at("roles").at(str(k))) for k, v in roles_raw.items()}

    rotations: dict[str, Rotation] = {}
    for i, raw in enumerate(_list(root.get("rotations"), ctx.at("rotations"))):
        c = ctx.at("rotations").at(i)
        r = _map(raw, c)
        rid = _unique_id(r, c, set(rotations), "rotation")
        members = tuple(
            person_ref(m, c.at("members").at(j))
            for j, m in enumerate(_list(r.get("members"), c.at("members")))
        )
        if not members:
            raise c.at("members").fail("a rotation needs members")
        overrides = []
        for j, o_raw in enumerate(_list(r.get("overrides"), c.at("overrides"))):
            oc = c.at("overrides").at(j)
            o = _map(o_raw, oc)
            start, end = _dt(o.get("start"), oc.at("start")), _dt(o.get("end"), oc.at("end"))
            if end <= start:
                raise oc.fail("override ends before it starts")
            overrides.append(Override(person_ref(o.get("person"), oc.at("person")), start, end))
        rotations[rid] = Rotation(
            rid,
            members,
            _dt(r.get("start"), c.at("start")),
            timedelta(hours=_int(r, "shift_hours", c, 168, lo=1)),
            tuple(overrides),
        )

    chat: dict[str, ChatTarget] = {}
    for i, raw in enumerate(_list(root.get("chat"), ctx.at("chat"))):
        c = ctx.at("chat").at(i)
        ch = _map(raw, c)
        cid = _unique_id(ch, c, set(chat), "chat")
        kind = _str(ch, "kind", c)
        if kind not in CHAT_KINDS:
            raise c.at("kind").fail(f"unknown chat kind {kind!r} ({', '.join(sorted(CHAT_KINDS))})")
        url, url_env = _opt_str(ch, "url", c), _opt_str(ch, "url_env", c)
        if (url is None) == (url_env is None):
            raise c.fail("give exactly one of url or url_env")
        chat[cid] = ChatTarget(cid, kind, url, url_env)

    def recipient(value: Any, c: _Ctx) -> str:
        if not isinstance(value, str) or ":" not in value:
            raise c.fail(
                f"expected person:ID, team:ID, role:NAME or oncall:ROTATION, got {value!r}"
            )
        kind, _, name = value.partition(":")
        namespaces: dict[str, Mapping[str, object]] = {
            "person": people,
            "team": teams,
            "role": roles,
            "oncall": rotations,
        }
        known = namespaces.get(kind)
        if known is None:
            raise c.fail(f"unknown recipient kind {kind!r} in {value!r}")
        if name not in known:
            raise c.fail(f"unknown {kind} {name!r}")
        return value

    routes: list[Route] = []
    for i, raw in enumerate(_list(root.get("routes"), ctx.at("routes"))):
        c = ctx.at("routes").at(i)
        r = _map(raw, c)
        name = _str(r, "name", c, f"route-{i}")
        c = _Ctx(f"routes[{i}] ({name})")
        levels = _levels(r.get("levels", r.get("level")), c.at("levels"), LEVELS)
        match = _map(r.get("match") or {}, c.at("match"))
        wait_default = r.get("ack_timeout_minutes")
        steps = []
        raw_steps = _list(r.get("steps"), c.at("steps"))
        if not raw_steps:
            raise c.at("steps").fail("a route needs at least one step")
        for j, s_raw in enumerate(raw_steps):
            sc = c.at("steps").at(j)
            s = _map(s_raw, sc)
            recips = tuple(
                recipient(x, sc.at("recipients").at(k))
                for k, x in enumerate(_list(s.get("recipients"), sc.at("recipients")))
            )
            channels = tuple(_list(s.get("channels"), sc.at("channels")))
            for k, ch_name in enumerate(channels):
                if ch_name not in PERSON_CHANNELS:
                    raise (
                        sc.at("channels")
                        .at(k)
                        .fail(
                            f"unknown channel {ch_name!r} (email, sms, push; chat is a broadcast)"
                        )
                    )
            if recips and not channels:
                raise sc.at("channels").fail("recipients given but no channel")
            broadcast = tuple(_list(s.get("broadcast"), sc.at("broadcast")))
            for k, b in enumerate(broadcast):
                if b != "digest" and b not in chat:
                    raise sc.at("broadcast").at(k).fail(f"unknown chat target {b!r}")
            if not recips and not broadcast:
                raise sc.fail("a step must notify someone (recipients or broadcast)")
            wait_raw = s.get("wait_minutes", wait_default)
            wait = None
            if j < len(raw_steps) - 1:
                if wait_raw is None:
                    raise sc.fail("set wait_minutes (or the route's ack_timeout_minutes)")
                if isinstance(wait_raw, bool) or not isinstance(wait_raw, int) or wait_raw < 1:
                    raise sc.at("wait_minutes").fail("must be a whole number of minutes >= 1")
                wait = timedelta(minutes=wait_raw)
            steps.append(Step(recips, channels, broadcast, wait))
        routes.append(
            Route(
                name,
                levels,
                tuple(steps),
                frozenset(map(str, _list(match.get("target_ids"), c.at("match.target_ids")))),
                frozenset(map(str, _list(match.get("target_kinds"), c.at("match.target_kinds")))),
                bool(r.get("needs_ack", True)),
            )
        )
    for level in LEVELS:
        if not any(level in r.levels for r in routes):
            raise ctx.at("routes").fail(f"no route handles level {level!r}")

    quiet = None
    if root.get("quiet_hours") is not None:
        c = ctx.at("quiet_hours")
        q = _map(root["quiet_hours"], c)
        q_levels = _levels(q.get("levels"), c.at("levels"), ("watch", "warning"))
        if "critical" in q_levels:
            raise c.at("levels").fail("quiet hours never apply to critical")
        q_channels = frozenset(_list(q.get("channels"), c.at("channels")) or ["sms", "push"])
        if not q_channels <= PERSON_CHANNELS:
            raise c.at("channels").fail(f"unknown channels {sorted(q_channels - PERSON_CHANNELS)}")
        quiet = QuietHours(
            _clock(q.get("start", "22:00"), c.at("start")),
            _clock(q.get("end", "07:00"), c.at("end")),
            q_levels,
            q_channels,
        )

    maintenance = []
    for i, raw in enumerate(_list(root.get("maintenance"), ctx.at("maintenance"))):
        c = ctx.at("maintenance").at(i)
        m = _map(raw, c)
        start, end = _dt(m.get("start"), c.at("start")), _dt(m.get("end"), c.at("end"))
        if end <= start:
            raise c.fail("window ends before it starts")
        maintenance.append(
            MaintenanceWindow(
                _str(m, "name", c, f"maintenance-{i}"),
                start,
                end,
                _levels(m.get("levels"), c.at("levels"), ("watch", "warning")),
                frozenset(map(str, _list(m.get("target_ids"), c.at("target_ids")))),
            )
        )

    ambassadors: dict[str, Ambassador] = {}
    for i, raw in enumerate(_list(root.get("ambassadors"), ctx.at("ambassadors"))):
        c = ctx.at("ambassadors").at(i)
        a = _map(raw, c)
        tid = _str(a, "target_id", c)
        if tid in ambassadors:
            raise c.at("target_id").fail(f"duplicate ambassador {tid!r}")
        consent = a.get("consent")
        if not isinstance(consent, bool):
            raise c.at("consent").fail("say consent: true or consent: false explicitly")
        a_channels = tuple(_list(a.get("channels"), c.at("channels")) or ["email", "push", "sms"])
        if not set(a_channels) <= PERSON_CHANNELS:
            raise c.at("channels").fail("channels are email, sms, push")
        ambassadors[tid] = Ambassador(
            tid,
            person_ref(a.get("person"), c.at("person")),
            consent,
            _str(a, "guideline_url", c),
            recipient(a.get("contact"), c.at("contact")),
            a_channels,
        )

    cap_raw = _map(root.get("sms_cap") or {}, ctx.at("sms_cap"))
    cap = SmsCap(
        _int(cap_raw, "per_hour", ctx.at("sms_cap"), 30, lo=1),
        _int(cap_raw, "per_day", ctx.at("sms_cap"), 200, lo=1),
    )
    if cap.per_day < cap.per_hour:
        raise ctx.at("sms_cap").fail("per_day must be at least per_hour")
    digest = _map(root.get("digest") or {}, ctx.at("digest"))
    digest_recipients = tuple(
        recipient(x, ctx.at("digest.recipients").at(k))
        for k, x in enumerate(_list(digest.get("recipients"), ctx.at("digest.recipients")))
    )
    if any("digest" in s.broadcast for r in routes for s in r.steps) and not digest_recipients:
        raise ctx.at("digest.recipients").fail("a route broadcasts to the digest: name recipients")
    return RoutingConfig(
        timezone=tz,
        people=people,
        teams=teams,
        roles=roles,
        rotations=rotations,
        routes=tuple(routes),
        quiet_hours=quiet,
        maintenance=tuple(maintenance),
        ambassadors=ambassadors,
        chat=chat,
        sms_cap=cap,
        sms_bundle_window=timedelta(minutes=_int(root, "sms_bundle_minutes", ctx, 10, lo=0)),
        digest_interval=timedelta(
            minutes=_int(digest, "interval_minutes", ctx.at("digest"), 60, lo=1)
        ),
        digest_recipients=digest_recipients,
    )
