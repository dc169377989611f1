"""The live watch list: who is watched on which network, and with whose consent.

Ambassadors are employees. They are monitored only with consent recorded with a date, and
only until it is withdrawn; an ambassador without it is left out of every source, and the
log says so by id (never silently). Validation names the offending entry, so a typo in the
YAML stops the listener with a message an operator can act on.

Pure: the YAML is parsed elsewhere; "today" is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from stormwatch_shared.targets import Target

NETWORKS = ("x", "mastodon", "bluesky")
MAX_X_RULE_CHARS = 1024
"""X filtered-stream rule length on ordinary access (2026)."""


class WatchListError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Handles(_Strict):
    """Account names per network, without the leading @ (Mastodon: ``user@server``)."""

    x: tuple[str, ...] = ()
    mastodon: tuple[str, ...] = ()
    bluesky: tuple[str, ...] = ()
    """Bluesky handles (``name.bsky.social``) or DIDs (``did:plc:...``)."""
    any: tuple[str, ...] = ()
    """Handles as they appear in texts on any network (imported drill lists); used for
    matching texts only, never to follow an account."""

    @field_validator("x", "mastodon", "bluesky", "any", mode="before")
    @classmethod
    def _strip_at(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(str(v).strip().removeprefix("@") for v in value if str(v).strip())
        return value

    def all_text_handles(self) -> list[str]:
        out: list[str] = []
        for h in (*self.x, *self.bluesky, *self.any):
            if not h.startswith("did:"):
                out.append(f"@{h}")
        for h in self.mastodon:
            out.append(f"@{h}")
            local = h.split("@", 1)[0]
            # Mastodon renders a mention as "@user" (the server is in the link only).
            out.append(f"@{local}")
        return list(dict.fromkeys(out))


class Consent(_Strict):
    recorded: date
    """The day the ambassador's written consent was recorded."""
    withdrawn: date | None = None
    note: str = Field(default="", max_length=500)


class _Entry(_Strict):
    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(default="", max_length=200)
    keywords: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    handles: Handles = Field(default_factory=Handles)

    @field_validator("keywords", "hashtags", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("hashtags")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        tags = tuple(t.strip().removeprefix("#") for t in value if t.strip())
        for t in tags:
            if not t.replace("_", "").isalnum():
                raise ValueError(f"hashtag {t!r} may contain only letters, digits and _")
        return tags


class Organisation(_Entry):
    names: tuple[str, ...] = ()
    """Further names the organisation goes by (matched like keywords)."""
    feeds: tuple[str, ...] = ()
    """RSS/Atom feeds (e.g. a news search for the name): every entry concerns this target."""


class Ambassador(_Entry):
    consent: Consent | None = None


class WatchList(_Strict):
    organisations: tuple[Organisation, ...] = Field(min_length=1)
    ambassadors: tuple[Ambassador, ...] = ()


def parse_watch_list(data: Any, origin: str = "watch list") -> WatchList:
    """Validate parsed YAML; ``organisation:`` (one mapping) is accepted for ``organisations``."""
    if not isinstance(data, Mapping):
        raise WatchListError(f"{origin}: expected a mapping with 'organisations' at the top")
    data = dict(data)
    if "organisation" in data:
        if "organisations" in data:
            raise WatchListError(f"{origin}: use either 'organisation' or 'organisations'")
        data["organisations"] = [data.pop("organisation")]
    try:
        watch = WatchList.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise WatchListError(f"{origin}: {_where(data, first['loc'])}: {first['msg']}") from exc
    ids = [e.id for e in (*watch.organisations, *watch.ambassadors)]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise WatchListError(f"{origin}: duplicate ids {dupes}")
    for entry in (*watch.organisations, *watch.ambassadors):
        if not (
            entry.keywords
            or entry.hashtags
            or entry.handles.all_text_handles()
            or getattr(entry, "names", ())
            or entry.name
        ):
            raise WatchListError(f"{origin}: entry {entry.id!r} has nothing to match")
    return watch


def _where(data: Mapping[str, Any], loc: Sequence[int | str]) -> str:
    """``ambassadors[1] (id 'jonas').consent.recorded`` rather than ``ambassadors.1...``."""
    parts: list[str] = []
    node: Any = data
    for p in loc:
        if isinstance(p, int):
            label = f"[{p}]"
            if isinstance(node, Sequence) and p < len(node) and isinstance(node[p], Mapping):
                entry_id = node[p].get("id")
                if entry_id:
                    label += f" (id {entry_id!r})"
                node = node[p]
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(p))
            node = node.get(p) if isinstance(node, Mapping) else None
    return "entry " + "".join(parts)


def consent_valid(ambassador: Ambassador, today: date) -> bool:
    c = ambassador.consent
    if c is None or c.recorded > today:
        return False
    return c.withdrawn is None or c.withdrawn > today


def monitored(watch: WatchList, today: date) -> tuple[list[_Entry], list[str]]:
    """Entries that may be monitored today, and one reason per ambassador left out."""
    entries: list[_Entry] = list(watch.organisations)
    skipped: list[str] = []
    for a in watch.ambassadors:
        if consent_valid(a, today):
            entries.append(a)
        elif a.consent is None:
            skipped.append(f"{a.id}: keine Einwilligung erfasst / no consent recorded")
        elif a.consent.recorded > today:
            skipped.append(f"{a.id}: Einwilligung erst ab / consent only from {a.consent.recorded}")
        else:
            skipped.append(f"{a.id}: Einwilligung widerrufen / consent withdrawn")
    return entries, skipped


def to_targets(entries: Iterable[_Entry]) -> list[Target]:
    targets = []
    for e in entries:
        names = (e.name, *getattr(e, "names", ())) if isinstance(e, Organisation) else ()
        keywords = [k for k in (*names, *e.keywords, *e.hashtags) if k.strip()]
        targets.append(
            Target(
                id=e.id,
                kind="organisation" if isinstance(e, Organisation) else "ambassador",
                name=e.name,
                keywords=tuple(dict.fromkeys(keywords)),
                handles=tuple(e.handles.all_text_handles()),
            )
        )
    return targets


def from_targets(targets: Iterable[Target]) -> WatchList:
    """A drill ``targets.json`` as a watch list. Its handles carry no network, so they go to
    ``any``; its ambassadors get no consent: whoever imports it records consent per person."""
    orgs: list[Organisation] = []
    ambassadors: list[Ambassador] = []
    for t in targets:
        handles = Handles(any=tuple(h.removeprefix("@") for h in t.handles))
        if t.kind == "organisation":
            names = [k for k in t.keywords if k != t.name]
            orgs.append(Organisation(id=t.id, name=t.name, keywords=tuple(names), handles=handles))
        else:
            ambassadors.append(
                Ambassador(id=t.id, name=t.name, keywords=t.keywords, handles=handles)
            )
    if not orgs:
        raise WatchListError("targets.json: no organisation target to import")
    return WatchList(organisations=tuple(orgs), ambassadors=tuple(ambassadors))


def follow_accounts(entries: Iterable[_Entry]) -> dict[str, list[str]]:
    """Account keys (``network:handle`` casefolded, ``bluesky:did:...``, ``rss:<feed>``) to
    the targets whose own posts, and the replies to them, are followed."""
    out: dict[str, list[str]] = {}
    for e in entries:
        keys = [f"x:{h}" for h in e.handles.x]
        keys += [f"mastodon:{h}" for h in e.handles.mastodon]
        keys += [f"bluesky:{h}" for h in e.handles.bluesky]
        if isinstance(e, Organisation):
            keys += [f"rss:{f[:200]}" for f in e.feeds]  # author ids are capped at 200
        for key in keys:
            key = account_key(key)
            out.setdefault(key, [])
            if e.id not in out[key]:
                out[key].append(e.id)
    return out


def account_key(key: str) -> str:
    network, _, name = key.partition(":")
    if network == "rss" or name.startswith("did:"):
        return f"{network}:{name}"
    return f"{network}:{name.removeprefix('@').casefold()}"


def _quote(term: str) -> str:
    term = term.replace('"', "")
    return f'"{term}"' if " " in term or "-" in term else term


def x_rules(entries: Iterable[_Entry]) -> list[tuple[str, str]]:
    """One filtered-stream rule per target, tagged with its id: names and keywords as phrases,
    hashtags, and for the target's own X accounts their posts, replies to them and mentions."""
    rules: list[tuple[str, str]] = []
    for e in entries:
        names = (e.name, *getattr(e, "names", ())) if isinstance(e, Organisation) else ()
        terms = [_quote(k) for k in dict.fromkeys((*names, *e.keywords)) if k.strip()]
        terms += [f"#{t}" for t in e.hashtags]
        for h in e.handles.x:
            terms += [f"from:{h}", f"to:{h}", f"@{h}"]
        for h in e.handles.any:
            terms.append(f"@{h}")
        terms = list(dict.fromkeys(terms))
        if not terms:
            continue
        value = " OR ".join(terms)
        if len(terms) > 1:
            value = f"({value})"
        if len(value) > MAX_X_RULE_CHARS:
            raise WatchListError(
                f"entry {e.id!r}: X rule has {len(value)} characters, at most "
                f"{MAX_X_RULE_CHARS} are allowed; shorten its keywords"
            )
        rules.append((value, e.id))
    return rules


def hashtags(entries: Iterable[_Entry]) -> list[str]:
    return list(dict.fromkeys(t for e in entries for t in e.hashtags))


def feeds(entries: Iterable[_Entry]) -> list[str]:
    return list(dict.fromkeys(f for e in entries if isinstance(e, Organisation) for f in e.feeds))
