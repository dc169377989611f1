"""Erasure (GDPR Art. 17) on the data shapes alerting keeps: detector snapshots and quoted posts.

Pure functions on plain dicts, so ``stormwatch forget`` can rewrite the compacted detector
changelog without a running detector and without importing Kafka here. The detector keeps
author ids as keys of its per-target maps (who was seen when, who already counted as
negative) and the ids and links of its top posts per bucket; texts never enter its state.

Erasing an author changes no counter: the counts are aggregates, not personal data, and
rewriting history would make the detector's past decisions unexplainable. The only effect on
detection is that the author, if they post again, counts as new to the target.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stormwatch_alerting.domain.detector import SNAPSHOT_VERSIONS_READ

AUTHOR_MAPS = ("neg_e", "known", "last_cnt", "last_neg")
"""Snapshot keys whose dict keys are author ids."""

# positions in a serialised bucket (``_Bucket.to_list``)
_REPLIES, _TOP = 9, 11
# positions in a top-post tuple: (followers, at, mention_id, url, negative)
_MID, _URL = 2, 3

ERASED_PARENT = "erased"
"""Stands in for an erased post id among reply parents, so pile-on counts stay intact."""


def normalise_handle(handle: str) -> str:
    """``@Anna``, ``anna`` and ``ANNA`` are one account; Mastodon keeps its ``@server``."""
    return handle.strip().removeprefix("@").casefold()


@dataclass(frozen=True)
class Subject:
    """Whose data to erase: any of the author ids, handles or mention ids."""

    author_ids: frozenset[str] = frozenset()
    handles: frozenset[str] = frozenset()
    mention_ids: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        author_ids: Iterable[str] = (),
        handles: Iterable[str] = (),
        mention_ids: Iterable[str] = (),
    ) -> Subject:
        return cls(
            frozenset(a for a in author_ids if a),
            frozenset(normalise_handle(h) for h in handles if normalise_handle(h)),
            frozenset(m for m in mention_ids if m),
        )

    def needles(self) -> set[str]:
        """Strings whose presence anywhere means data of this subject is still there."""
        return {*self.author_ids, *self.handles, *self.mention_ids}

    def matches_author(self, author_id: str | None, handle: str | None) -> bool:
        return (author_id is not None and author_id in self.author_ids) or (
            handle is not None and normalise_handle(handle) in self.handles
        )

    def matches_url(self, url: str | None) -> bool:
        """A post link naming one of the handles (``x.com/anna/...``, ``host/@anna/...``)."""
        if not url or not self.handles:
            return False
        parts = urlsplit(url)
        host = (parts.hostname or "").casefold()
        segments = {normalise_handle(s) for s in parts.path.split("/") if s}
        for handle in self.handles:
            name, _, server = handle.partition("@")
            if handle in segments or (name in segments and (not server or server == host)):
                return True
        return False

    def matches_post(self, post: Mapping[str, Any]) -> bool:
        """A quoted top post (alert evidence): by mention id, author handle or link."""
        mid = post.get("mention_id")
        author = post.get("author")
        return (
            (isinstance(mid, str) and mid in self.mention_ids)
            or (isinstance(author, str) and self.matches_author(author, author))
            or self.matches_url(post.get("url") if isinstance(post.get("url"), str) else None)
        )


def erase_from_snapshot(state: Mapping[str, Any], subject: Subject) -> tuple[dict[str, Any], int]:
    """A copy of a detector snapshot without the subject's authors and posts; and how many
    entries were removed (0: nothing of theirs was in it, no need to rewrite).

    Refuses snapshot versions it does not know: a layout it cannot read could hide an author
    id where this function does not look, and a silent partial erasure is worse than none.
    """
    # Version 3 adds the burst test's arrival times (no author or post ids) to version 2.
    if state.get("version") not in SNAPSHOT_VERSIONS_READ:
        raise ValueError(
            f"detector snapshot version {state.get('version')!r} unknown to the eraser "
            f"(knows {', '.join(map(str, SNAPSHOT_VERSIONS_READ))}); "
            "update stormwatch_alerting.privacy"
        )
    out = copy.deepcopy(dict(state))
    removed = 0
    for key in AUTHOR_MAPS:
        authors: dict[str, Any] = out.get(key) or {}
        for author in [a for a in authors if a in subject.author_ids]:
            del authors[author]
            removed += 1
    parents = sorted(subject.mention_ids)
    for bucket in [b for _, b in out.get("open", [])] + list(out.get("window", [])):
        removed += _erase_bucket(bucket, subject, parents)
    return out, removed


def _erase_bucket(bucket: list[Any], subject: Subject, parents: list[str]) -> int:
    removed = 0
    top = bucket[_TOP]
    if top:
        ids, by_url = subject.mention_ids, subject.matches_url
        kept = [t for t in top if t[_MID] not in ids and not by_url(t[_URL])]
        removed += len(top) - len(kept)
        bucket[_TOP] = kept or None
    replies: dict[str, int] | None = bucket[_REPLIES]
    if replies:
        for parent in [p for p in replies if p in subject.mention_ids]:
            # keep the count (a pile-on is not personal data), drop the post id
            placeholder = f"{ERASED_PARENT}:{parents.index(parent)}"
            replies[placeholder] = replies.get(placeholder, 0) + replies.pop(parent)
            removed += 1
    return removed


def residue(value: Any, needles: Iterable[str], *, exact: bool = False) -> list[str]:
    """Where any needle still occurs (as a key or inside a string) in a JSON-like value;
    ``exact``: only strings equal to a needle (ids, where a substring would be another id).

    The eraser's own check: run on the rewritten state, an empty list is the evidence that
    nothing of the subject is left, whatever the snapshot layout has become.
    """
    wanted = [n.casefold() for n in needles if n]
    found: list[str] = []

    def walk(v: Any, where: str) -> None:
        if isinstance(v, str):
            low = v.casefold()
            if any(n == low if exact else n in low for n in wanted):
                found.append(where)
        elif isinstance(v, Mapping):
            for k, item in v.items():
                walk(str(k), f"{where}.{k}[key]")
                walk(item, f"{where}.{k}")
        elif isinstance(v, list | tuple):
            for i, item in enumerate(v):
                walk(item, f"{where}[{i}]")

    walk(value, "$")
    return found


def subject_digest(salt: bytes, kind: str, value: str) -> str:
    """Keyed hash of an erased subject for the erasure log: answers "was this request
    already carried out?" for someone who knows the handle, reveals nothing to someone who
    only has the log."""
    msg = f"{kind}:{normalise_handle(value) if kind == 'author' else value}".encode()
    return hmac.new(salt, msg, hashlib.sha256).hexdigest()
