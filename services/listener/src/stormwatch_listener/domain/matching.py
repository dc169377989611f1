"""Turning a raw mention into one ``MentionReceived`` per watched target it concerns.

One event per target (not one per mention) because topics are keyed by target: each
target's detector must see every mention that concerns it on its own partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stormwatch_shared.events import Mention, MentionReceived, derived_event_id
from stormwatch_shared.targets import Target, TargetMatcher

from stormwatch_listener.domain.normalize import at_uri_author, masto_uri_author
from stormwatch_listener.domain.threads import ThreadTargets
from stormwatch_listener.domain.watchlist import account_key


class WatchMatcher(TargetMatcher):
    """Text matching plus followed accounts: a target's own posts and the replies to them.

    Texts alone miss a pile-on: on Bluesky a reply need not name the person it answers, and
    an ambassador's own post rarely names herself. So a mention also concerns a target when
    its author is one of the target's followed accounts, or when it replies to a post by one
    (the parent's author is read from its id: Bluesky ``at://`` URIs and Mastodon status URIs
    name it; on X the reply text starts with the @handle and the rule has ``to:``).
    """

    def __init__(
        self, targets: Sequence[Target], accounts: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        super().__init__(targets)
        self.accounts: dict[str, list[str]] = {}
        for key, ids in (accounts or {}).items():
            self.add_account(key, ids)

    def add_account(self, key: str, target_ids: Sequence[str]) -> None:
        bucket = self.accounts.setdefault(account_key(key), [])
        for tid in target_ids:
            if tid in self.targets and tid not in bucket:
                bucket.append(tid)

    def match_mention(self, mention: Mention) -> list[str]:
        found = self.match(mention.text)
        if not self.accounts:
            return found
        src = mention.source
        keys = [f"{src}:{mention.author.id}", f"{src}:{mention.author.handle}"]
        parent = mention.in_reply_to or ""
        if parent.startswith("bsky:"):
            parent_did = at_uri_author(parent[5:])
            if parent_did:
                keys.append(f"bluesky:{parent_did}")
        elif parent.startswith("masto:"):
            parent_acct = masto_uri_author(parent[6:])
            if parent_acct:
                keys.append(f"mastodon:{parent_acct}")
        extra = [tid for k in keys for tid in self.accounts.get(account_key(k), ())]
        if not extra:
            return found
        order = list(self.targets)
        return sorted(set(found) | set(extra), key=order.index)


def match_ids(mention: Mention, matcher: TargetMatcher) -> list[str]:
    if isinstance(matcher, WatchMatcher):
        return matcher.match_mention(mention)
    return matcher.match(mention.text)


def received_events(
    mention: Mention,
    matcher: TargetMatcher,
    *,
    drill: bool = False,
    threads: ThreadTargets | None = None,
) -> list[MentionReceived]:
    """One event per target; with ``threads``, a reply also concerns its parent's targets."""
    ids = match_ids(mention, matcher)
    if threads is not None:
        ids = threads.resolve(
            mention.id,
            mention.in_reply_to,
            mention.created_at.timestamp(),
            ids,
            matcher.targets,
        )
    if not ids:
        return []
    targets = tuple(ids)
    return [
        MentionReceived(
            # Deterministic id: a re-published mention (restart, replay) is recognisably
            # the same event downstream, which makes at-least-once effectively once.
            event_id=derived_event_id(mention.id, tid),
            occurred_at=mention.created_at,
            target_id=tid,
            target_ids=targets,
            target_name=matcher.targets[tid].name,
            target_kind=matcher.targets[tid].kind,
            mention=mention,
            drill=drill,
        )
        for tid in ids
    ]
