"""Crisis topics of a mention: what a hospital shitstorm is typically about.

A negative mention about parking is noise; one about hygiene, a treatment error or a death is
what communications must see first. The taxonomy is German and English stem patterns rather
than word lists because German glues nouns together ("Hygienemängel",
"Krankenhauskeime", "Personalmangel"): stems match anywhere inside a compound, while short
English words that would match inside unrelated words are anchored at a word start.

Extendable without a code change: ``TopicTagger.from_file`` merges a JSON or YAML file of
extra patterns (``{"topics": {"hygiene": ["schimmel"], "parking": ["parkplatz"]}}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ahocorasick

TOPICS: dict[str, tuple[str, ...]] = {
    "hygiene": (
        r"hygien",
        r"keim",
        r"\bmrsa\b",
        r"\bmrgn\b",
        r"infekt",
        r"infiziert",
        r"infection",
        r"infected",
        r"sepsis",
        r"desinfi",
        r"disinfect",
        r"dreck",
        r"dreckig",
        r"schmutz",
        r"\bdirty\b",
        r"\bfilth",
        r"schimmel",
        r"\bmou?ld\b",
        r"kakerlake",
        r"cockroach",
        r"ungeziefer",
        r"bakteri",
        r"bacteri",
        r"superbug",
        r"unsanitary",
        r"unclean",
    ),
    "treatment_error": (
        r"behandlungsfehler",
        r"kunstfehler",
        r"ärztepfusch",
        r"pfusch",
        r"fehldiagnos",
        r"fehlbehandl",
        r"falsch\w*\s+(?:diagnos|operiert|behandelt|medikament|dosis|bein|arm|seite|patient)",
        r"verwechs",
        r"\bop[- ]?fehler",
        r"operationsfehler",
        r"\bmalpractice",
        r"misdiagnos",
        r"\bbotched",
        r"\bwrong\s+(?:leg|arm|side|patient|diagnosis|medication|medicine|dose|drug|organ)",
        r"medical\s+(?:error|mistake|negligence)",
        r"surgical\s+(?:error|mistake)",
        r"\bnegligen",
        r"fahrlässig",
    ),
    "waiting_time": (
        r"wartezeit",
        r"wartezimmer",
        r"warteliste",
        r"warteschlange",
        r"\bwarte(?:n|t|te|ten)?\b",
        r"gewartet",
        r"stunden\s+(?:lang\s+)?(?:in\s+der\s+)?notaufnahme",
        r"\bwait(?:ed|ing|s)?\b",
        r"waiting\s+(?:time|list|room)",
        r"\bqueue",
        r"\bhours?\s+in\s+(?:the\s+)?(?:er|a&e|emergency)",
    ),
    "staffing": (
        r"personalmangel",
        r"personalnot",
        r"pflegenotstand",
        r"fachkräftemangel",
        r"pflegekräftemangel",
        r"unterbesetz",
        r"überlast",
        r"überstunden",
        r"\bam\s+limit\b",
        r"streik",
        r"\bverdi\b",
        r"marburger\s+bund",
        r"kündigungswelle",
        r"understaff",
        r"short[- ]staffed",
        r"staff(?:ing)?\s+shortage",
        r"nurse\s+shortage",
        r"shortage\s+of\s+(?:staff|nurses|doctors)",
        r"\bstrik(?:e|es|ing)\b",
        r"walk[- ]?out",
        r"overworked",
        r"\bburn[- ]?out",
    ),
    "data_leak": (
        r"datenleck",
        r"datenpanne",
        r"datenschutz",
        r"datenklau",
        r"patientendaten",
        r"patientenakte",
        r"\bdsgvo\b",
        r"\bgdpr\b",
        r"gehackt",
        r"hackerangriff",
        r"cyberangriff",
        r"cyber[- ]?attack",
        r"ransomware",
        r"\bhack(?:ed|ers?|ing)?\b",
        r"data\s+(?:breach|leak)",
        r"\bleak(?:ed|s)?\b",
        r"patient\s+(?:data|records|files)",
        r"\bbreach\b",
    ),
    "rudeness": (
        r"unfreundlich",
        r"unhöflich",
        r"respektlos",
        r"arrogan",
        r"herablassend",
        r"angeschrien",
        r"anschrei",
        r"angebrüllt",
        r"beleidig",
        r"rassis",
        r"diskrimin",
        r"sexis",
        r"mobbing",
        r"belästig",
        r"von\s+oben\s+herab",
        r"\brude(?:ly|ness)?\b",
        r"disrespect",
        r"condescend",
        r"(?:yelled|shouted|screamed)\s+at",
        r"racis",
        r"discriminat",
        r"harass",
        r"\bbully",
        r"\binsult",
    ),
    "death": (
        r"gestorben",
        r"verstorben",
        r"\bstarb\b",
        r"\bsterben\b",
        r"\btod\b",
        r"\btode",
        r"todesfall",
        r"tödlich",
        r"ums\s+leben",
        r"\bleiche",
        r"\bdied\b",
        r"\bdead\b",
        r"\bdeaths?\b",
        r"\bkilled\b",
        r"passed\s+away",
        r"\bfatal",
    ),
}


class TopicTagger:
    """Compiled taxonomy: a topic is tagged when any of its patterns matches; taxonomy order.

    Tagging runs on every mention and was the largest cost of the sentiment service, so
    texts are lower-cased once and matched without ``re.IGNORECASE`` (which disables the
    regex engine's literal-prefix search). Most mentions carry no topic, so a regex runs
    only where a literal it needs occurs: one Aho-Corasick scan finds those literals for
    all ~130 patterns at once (2.5 us per tweet), where a substring test per pattern cost
    ~20 us and was 11 % of the service's CPU in the pipeline bench (py-spy, 2026-12-02).
    ``tag_many`` can skip even that scan for the nine in ten texts that hold no needle at all,
    given a compiled pre-check of a whole batch (2.9 -> 1.3 us per bench tweet, 2026-12-04).
    """

    __slots__ = ("_automaton", "_bare_bits", "_by_topic", "patterns")

    def __init__(self, patterns: Mapping[str, Iterable[str]]) -> None:
        self.patterns: dict[str, tuple[str, ...]] = {}
        for topic, pats in patterns.items():
            if not isinstance(topic, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", topic):
                raise ValueError(f"topic id {topic!r}: use lower-case letters, digits and _")
            plist = tuple(pats)
            if not plist:
                continue
            for p in plist:
                if not isinstance(p, str) or not p:
                    raise ValueError(f"topic {topic!r}: pattern {p!r} must be a non-empty string")
                try:
                    re.compile(p)
                except re.error as exc:
                    raise ValueError(f"topic {topic!r}: invalid pattern {p!r}: {exc}") from exc
            self.patterns[topic] = plist
        # Pre-check: every pattern with a needle set (literals of which any match contains
        # one) enters one Aho-Corasick automaton, so a text is scanned once for all of them
        # and only the patterns whose needles occur are searched. Each pattern is one bit;
        # patterns without needles ("bare") are searched on every text.
        self._automaton = ahocorasick.Automaton()
        self._bare_bits = 0
        by_topic: list[tuple[str, int, tuple[tuple[int, re.Pattern[str]], ...]]] = []
        bit = 1
        for topic, plist in self.patterns.items():
            searched = []
            for p in plist:
                lowered = _lower_pattern(p)
                needles = _needles(lowered)
                if needles is None:
                    self._bare_bits |= bit
                for needle in needles or ():
                    self._automaton.add_word(needle, self._automaton.get(needle, 0) | bit)
                searched.append((bit, re.compile(lowered)))
                bit <<= 1
            by_topic.append((topic, sum(b for b, _ in searched), tuple(searched)))
        self._by_topic = tuple(by_topic)
        if len(self._automaton):
            self._automaton.make_automaton()

    @classmethod
    def default(cls) -> TopicTagger:
        return _DEFAULT

    def extended(self, extra: Mapping[str, Iterable[str]]) -> TopicTagger:
        """A new tagger with ``extra`` patterns added to existing topics or as new topics."""
        merged = {t: list(p) for t, p in self.patterns.items()}
        for topic, pats in extra.items():
            if isinstance(pats, str):
                pats = [pats]
            merged.setdefault(topic, []).extend(pats)
        return TopicTagger(merged)

    @classmethod
    def from_config_text(cls, text: str, fmt: str = "json") -> TopicTagger:
        """Default taxonomy plus the ``topics`` mapping of a JSON or YAML document."""
        data: Any
        if fmt == "json":
            data = json.loads(text)
        elif fmt in {"yaml", "yml"}:
            import yaml

            data = yaml.safe_load(text)
        else:
            raise ValueError(f"unknown topic config format {fmt!r} (json or yaml)")
        topics = data.get("topics") if isinstance(data, dict) else None
        if not isinstance(topics, dict):
            raise ValueError('topic config must be a mapping with a "topics" mapping')
        return _DEFAULT.extended(topics)

    @classmethod
    def from_file(cls, path: str | Path) -> TopicTagger:
        p = Path(path)
        fmt = "yaml" if p.suffix.lower() in {".yaml", ".yml"} else "json"
        return cls.from_config_text(p.read_text(encoding="utf-8"), fmt)

    def tag(self, text: str) -> tuple[str, ...]:
        """Topic ids found in ``text`` (empty tuple for none or for non-text input)."""
        if not isinstance(text, str) or not text:
            return ()
        return self._tag_lowered(text[:10_000].lower(), scan=True)

    def tag_many(
        self,
        texts: Sequence[str],
        holds_needle: Callable[[list[str]], list[int] | None] | None = None,
    ) -> list[tuple[str, ...]]:
        """``tag`` of each text.

        ``holds_needle``, where given, tells for all lowered texts at once which of them
        hold any of ``needles`` (a compiled pre-check: ``engines.native.needle_check``; None
        where it cannot). A text that holds none skips the scan, which is exact because
        every pattern with needles needs one of them to match; the others take the scan.
        """
        lows = [t[:10_000].lower() if isinstance(t, str) else "" for t in texts]
        held = holds_needle(lows) if holds_needle is not None and len(self._automaton) else None
        if held is None:  # no pre-check: every text is scanned
            held = [1] * len(lows)
        return [
            self._tag_lowered(low, scan=bool(hit)) if low else ()
            for low, hit in zip(lows, held, strict=True)
        ]

    @property
    def needles(self) -> tuple[str, ...]:
        """The literals of the pre-check: a pattern with needles matches only where one of
        its needles occurs in the lowered text."""
        return tuple(self._automaton.keys()) if len(self._automaton) else ()

    def _tag_lowered(self, text: str, scan: bool) -> tuple[str, ...]:
        bits = self._bare_bits
        if scan and len(self._automaton):
            for _end, needle_bits in self._automaton.iter(text):
                bits |= needle_bits
        if not bits:
            return ()
        found = []
        for topic, topic_bits, searched in self._by_topic:
            if bits & topic_bits:
                for bit, rx in searched:
                    if bits & bit and rx.search(text):
                        found.append(topic)
                        break
        return tuple(found)

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.patterns)


def _needles(pattern: str) -> frozenset[str] | None:
    """Literals of which every match of ``pattern`` contains at least one; None if unknown.

    Read from the regex parser's tree: a run of top-level literals is one needle (``\\b`` and
    other zero-width assertions do not break it; an optional single letter continues it both
    ways, up to ``_MAX_SPELLINGS`` spellings); a group, or a repeat of at least once,
    gives its body's needles; an alternation gives the union of its branches' needles, if
    every branch has some. Of the candidates the one whose shortest needle is longest wins
    (the most selective). Classes, wildcards, optional parts and lookarounds give nothing,
    so a pattern that is only those (or can match the empty string) has no needles.
    """
    from re import _parser  # type: ignore[attr-defined]

    parsed = _parser.parse(pattern)
    if parsed.state.flags & re.IGNORECASE:
        # the text is lower-cased, but case-folding matches more than lower case ("ſ" is
        # "s" to ``(?i)``), so a literal needle could miss a match: no needles
        return None
    return _sequence_needles(parsed, _parser)


def _sequence_needles(items: Any, parser: Any) -> frozenset[str] | None:
    candidates: list[frozenset[str]] = []
    runs = [""]  # the spellings of the current run of literals (an optional letter: two)

    def flush() -> None:
        # every match spells the run one of these ways, contiguously: a needle set, unless
        # one way is empty (then a match may hold no literal of it)
        if all(runs):
            candidates.append(frozenset(runs))
        runs[:] = [""]

    for op, arg in items:
        if op is parser.LITERAL:
            runs[:] = [r + chr(arg) for r in runs]
            continue
        if op is parser.AT:
            continue
        if (
            op is parser.MAX_REPEAT
            and arg[0] == 0
            and arg[1] == 1
            and len(arg[2]) == 1
            and arg[2][0][0] is parser.LITERAL
            and 2 * len(runs) <= _MAX_SPELLINGS
        ):
            # ``u?`` in ``mou?ld``: the run goes on both ways (``mould``, ``mold``) instead
            # of ending in a two-letter needle that a quarter of all texts contain
            letter = chr(arg[2][0][1])
            runs[:] = [*(r + letter for r in runs), *runs]
            continue
        flush()
        found: frozenset[str] | None = None
        if op is parser.SUBPATTERN:
            if not arg[1] & re.IGNORECASE:  # a ``(?i:...)`` group gives nothing, as above
                found = _sequence_needles(arg[-1], parser)
        elif op is parser.BRANCH:
            branches = [_sequence_needles(b, parser) for b in arg[1]]
            if all(b is not None for b in branches):
                found = frozenset().union(*(b for b in branches if b is not None))
        elif op in (parser.MAX_REPEAT, parser.MIN_REPEAT, parser.POSSESSIVE_REPEAT):
            low, _high, body = arg
            if low >= 1:
                found = _sequence_needles(body, parser)
        if found:
            candidates.append(found)
    flush()
    if not candidates:
        return None
    return max(candidates, key=lambda c: (min(len(n) for n in c), -len(c)))


_MAX_SPELLINGS = 8
"""At most this many spellings of one run (three optional letters); more end the run."""


def _lower_pattern(pattern: str) -> str:
    """Lower-case a pattern's literals but not its escapes (``\\W`` is not ``\\w``)."""
    return re.sub(r"\\.|[^\\]+", lambda m: m[0] if m[0][0] == "\\" else m[0].lower(), pattern)


_DEFAULT = TopicTagger(TOPICS)
