from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from stormwatch_shared.scenario import ReadProblems, iter_mentions
from stormwatch_shared.targets import Target, TargetMatcher, TargetsError, load_targets

TARGETS = [
    Target(
        id="hospital",
        kind="organisation",
        name="Klinikum Nordstadt",
        keywords=("Klinikum Nordstadt", "KlinikumNordstadt", "Klinik Nordstadt"),
        handles=("@KlinikumNord",),
    ),
    Target(id="paula", kind="ambassador", name="Paula", handles=("@pflege_paula",)),
    Target(id="paula2", kind="ambassador", name="Paula 2", handles=("@pflege_paula2",)),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nie wieder Klinikum Nordstadt!", ["hospital"]),
        ("nie wieder KLINIKUM nordstadt", ["hospital"]),
        ("#KlinikumNordstadt wartet ewig", ["hospital"]),
        ("@pflege_paula danke!", ["paula"]),
        ("@pflege_paula2 danke!", ["paula2"]),
        ("@pflege_paula und @KlinikumNord", ["hospital", "paula"]),
        ("Die Klinik am Nordpark", []),
        ("", []),
    ],
)
def test_matching(text: str, expected: list[str]) -> None:
    assert TargetMatcher(TARGETS).match(text) == expected


def test_watch_list_errors_name_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "targets.json"
    bad.write_text('[{"id": "a b"}]')
    with pytest.raises(TargetsError, match=r"entry 0\.id"):
        load_targets(bad)
    bad.write_text('[{"id": "a"}, {"id": "a"}]')
    with pytest.raises(TargetsError, match="duplicate"):
        load_targets(bad)
    with pytest.raises(TargetsError, match="not found"):
        load_targets(tmp_path / "missing.json")


def test_malformed_lines_are_reported_with_line_numbers_and_skipped(tmp_path: Path) -> None:
    good = {
        "id": "x:1",
        "source": "x",
        "created_at": "2026-03-02T00:44:06Z",
        "text": "hi",
        "lang": "de",
        "author": {"id": "u", "handle": "@u", "followers": 1},
        "url": None,
        "in_reply_to": None,
        "metrics": {"likes": 0, "reposts": 0, "replies": 0},
    }
    path = tmp_path / "mentions.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                orjson.dumps(good),
                b"{oops",
                orjson.dumps({**good, "source": "myspace"}),
                b"",
                orjson.dumps({**good, "id": "x:2"}),
            ]
        )
    )
    problems = ReadProblems()
    mentions = list(iter_mentions(path, problems))
    assert [m.id for m in mentions] == ["x:1", "x:2"]
    assert problems.count == 2
    assert problems.messages[0].startswith(f"{path}:2: invalid JSON")
    assert problems.messages[1].startswith(f"{path}:3: source")
