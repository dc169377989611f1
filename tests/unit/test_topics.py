"""Crisis topic tagging: German compounds, English phrases, config extension."""

from __future__ import annotations

import json

import pytest
from stormwatch_sentiment.domain.topics import TopicTagger

CASES = [
    ("Die Hygienemängel auf Station 4 sind unfassbar", {"hygiene"}),
    ("Schon wieder ein Keim-Ausbruch auf der Intensivstation", {"hygiene"}),
    ("Krankenhauskeime überall, MRSA auf der Kinderstation", {"hygiene"}),
    ("The ward was dirty and my mum caught an infection", {"hygiene"}),
    ("Behandlungsfehler im Klinikum: falsches Bein operiert", {"treatment_error"}),
    ("Meinem Vater wurde das falsche Medikament gegeben", {"treatment_error"}),
    ("They gave my father the wrong medication", {"treatment_error"}),
    ("Sechs Stunden Wartezeit in der Notaufnahme", {"waiting_time"}),
    ("Sieben Stunden in der Notaufnahme gewartet", {"waiting_time"}),
    ("Waited seven hours in the ER and nobody cared", {"waiting_time"}),
    ("Personalmangel auf allen Stationen", {"staffing"}),
    ("Warnstreik bei Verdi: Pflegekräfte legen Arbeit nieder", {"staffing"}),
    ("The hospital is badly understaffed", {"staffing"}),
    ("Datenleck im Klinikum: Patientendaten offen im Netz", {"data_leak"}),
    ("Hospital hacked, patient records leaked", {"data_leak"}),
    ("Die Ärztin war unfreundlich und respektlos", {"rudeness"}),
    ("Staff were rude and condescending", {"rudeness"}),
    ("Patient nach OP verstorben", {"death"}),
    ("A patient died after waiting in the corridor", {"death", "waiting_time"}),
    ("Tag der offenen Tür am Samstag", set()),
    ("Great care, thank you!", set()),
    ("The waitress at the café was lovely", set()),
    ("Todd and Theodor went strikingly well", set()),
    ("", set()),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_default_taxonomy(text: str, expected: set[str]) -> None:
    assert set(TopicTagger.default().tag(text)) == expected


def test_tags_follow_taxonomy_order_and_are_unique() -> None:
    tags = TopicTagger.default().tag("Datenleck und Hygienemängel und Hygiene")
    assert tags == ("hygiene", "data_leak")


@pytest.mark.parametrize("bad", [None, 42, "x" * 100_000, "\udcff\ud800", "😡😡😡"])
def test_odd_input_never_raises(bad: object) -> None:
    assert isinstance(TopicTagger.default().tag(bad), tuple)  # type: ignore[arg-type]


def test_extension_by_json_adds_topics_and_patterns(tmp_path) -> None:
    cfg = tmp_path / "topics.json"
    cfg.write_text(
        json.dumps({"topics": {"parking": ["parkplatz", r"\bparking\b"], "hygiene": ["staubig"]}})
    )
    tagger = TopicTagger.from_file(cfg)
    assert tagger.tag("Kein Parkplatz frei") == ("parking",)
    assert tagger.tag("Alles staubig hier") == ("hygiene",)
    assert tagger.tag("Hygienemängel") == ("hygiene",)  # defaults kept
    assert "parking" not in TopicTagger.default().topics  # default untouched


def test_extension_by_yaml(tmp_path) -> None:
    cfg = tmp_path / "topics.yaml"
    cfg.write_text("topics:\n  food:\n    - essen\n    - \\bfood\\b\n")
    assert TopicTagger.from_file(cfg).tag("Das Essen war kalt") == ("food",)


@pytest.mark.parametrize(
    "config",
    ['{"topics": {"Bad Id": ["x"]}}', '{"topics": {"ok": ["("]}}', '{"nope": {}}', "[]"],
)
def test_bad_config_is_rejected_with_a_reason(config: str) -> None:
    with pytest.raises(ValueError):
        TopicTagger.from_config_text(config)
