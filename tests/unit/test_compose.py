"""docker-compose.yml without a Docker engine: valid against the Compose Specification's
JSON Schema (vendored in tests/data/compose-spec), and everything it names exists."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
SCHEMA = json.loads((REPO / "tests/data/compose-spec/compose-spec.json").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
OURS = ("listener", "sentiment", "alerting")
METRICS_PORTS = {"listener": 9101, "sentiment": 9102, "alerting": 9103}


def validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    return cls(SCHEMA)


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    errors = [f"{list(e.path)}: {e.message}" for e in validator().iter_errors(COMPOSE)]
    assert not errors, errors


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["services"]["kafka"].update(imagee="typo"),
        lambda c: c["services"]["grafana"].update(ports="3000:3000"),
        lambda c: c["services"]["topics"]["depends_on"]["kafka"].update(condition="healthy"),
        lambda c: c.update(servics={}),
    ],
    ids=["unknown key", "ports not a list", "bad depends_on condition", "unknown top level"],
)
def test_the_schema_check_is_strict(break_it: Any) -> None:
    broken = copy.deepcopy(COMPOSE)
    break_it(broken)
    assert list(validator().iter_errors(broken))


def test_the_stack_has_every_part_the_operators_need() -> None:
    assert set(SERVICES) == {
        "kafka",
        "topics",
        "listener",
        "sentiment",
        "alerting",
        "prometheus",
        "alertmanager",
        "grafana",
        "mailpit",
    }
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    assert SERVICES["topics"]["command"] == ["stormwatch", "topics", "ensure"]
    for name in OURS:
        cond = SERVICES[name]["depends_on"]["topics"]["condition"]
        assert cond == "service_completed_successfully"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_images_are_pinned_and_ports_stay_on_localhost(name: str) -> None:
    service = SERVICES[name]
    image = service["image"]
    assert ":" in image and not image.endswith(":latest"), image
    for port in service.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
    for dep in service.get("depends_on", {}):
        assert dep in SERVICES


@pytest.mark.parametrize("name", [n for n, s in SERVICES.items() if "build" in s])
def test_build_context_dockerfile_and_copied_paths_exist(name: str) -> None:
    build = SERVICES[name]["build"]
    context = (REPO / build["context"]).resolve()
    dockerfile = context / build["dockerfile"]
    assert dockerfile.is_file(), dockerfile
    rules = _dockerignore(context)
    for line in dockerfile.read_text().splitlines():
        m = re.match(r"COPY\s+(?!--from)(?:--\S+\s+)*(.+)\s+\S+$", line)
        if not m:
            continue
        for src in m.group(1).split():
            assert (context / src).exists(), f"{dockerfile}: COPY {src} does not exist"
            excluded = _ignored(src, rules)
            assert not excluded, f"{dockerfile}: COPY {src} is excluded by .dockerignore"


def _dockerignore(context: Path) -> list[str]:
    return [
        line.strip()
        for line in (context / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def _ignored(path: str, rules: list[str]) -> bool:
    """Docker's reading of .dockerignore for one path: the last rule that matches the path or
    a folder above it decides, and a rule starting with ``!`` lets the path back in."""
    parts = path.strip("/").split("/")
    ignored = False
    for rule in rules:
        keep = rule.startswith("!")
        pattern = rule.lstrip("!").strip("/")
        rx = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(rx, "/".join(parts[:k])) for k in range(1, len(parts) + 1)):
            ignored = not keep
    return ignored


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("tools/build_native.py", False),  # let back in below `tools`
        ("tools/eval/run_eval.py", True),
        ("services/alerting/src/stormwatch_alerting/domain/_native/k/BUILT", True),
        ("services", False),
        ("tests", True),
    ],
)
def test_dockerignore_reading(path: str, ignored: bool) -> None:
    assert _ignored(path, _dockerignore(REPO)) is ignored


@pytest.mark.parametrize("name", OURS)
def test_images_compile_the_native_parts_in_the_build_stage(name: str) -> None:
    """The compiled detector and featurizer are built inside the image, for its interpreter;
    the compiler stays in the build stage, and a failed build fails the image."""
    dockerfile = (REPO / "services" / name / "Dockerfile").read_text()
    build, runtime = dockerfile.split("\nFROM ${PYTHON_IMAGE}\n")
    assert "gcc" in build and "gcc" not in runtime
    assert "tools/build_native.py --check" in build
    native = build.index("tools/build_native.py --check")
    # the packages are built after the native parts, and not from uv's cache, which would
    # hand back a wheel of the same pyproject.toml without them
    install = build.index("uv sync --locked --no-dev --all-packages --no-editable --no-cache")
    assert native < install


@pytest.mark.parametrize("name", OURS)
def test_service_images(name: str) -> None:
    dockerfile = (REPO / "services" / name / "Dockerfile").read_text()
    port = METRICS_PORTS[name]
    assert f"EXPOSE {port}" in dockerfile
    assert f"http://127.0.0.1:{port}/healthz" in dockerfile
    assert "USER stormwatch" in dockerfile
    assert "uv sync --locked --no-dev" in dockerfile
    assert "--extra" not in dockerfile and "torch]" not in dockerfile
    env = SERVICES[name]["environment"]
    assert int(env[f"{name.upper()}_METRICS_PORT"]) == port
    assert env[f"{name.upper()}_METRICS_HOST"] == "0.0.0.0"
    assert f"127.0.0.1:{port}:{port}" in SERVICES[name]["ports"]


def test_sentiment_image_refuses_torch() -> None:
    dockerfile = (REPO / "services/sentiment/Dockerfile").read_text()
    assert "find_spec('torch') is not None" in dockerfile


def mounted_host_paths() -> list[tuple[str, str]]:
    out = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                out.append((name, source))
    return out


@pytest.mark.parametrize(("service", "source"), mounted_host_paths())
def test_mounted_files_exist(service: str, source: str) -> None:
    assert (REPO / source).exists(), f"{service} mounts missing {source}"


def test_prometheus_scrapes_the_compose_services_on_their_ports() -> None:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    for name, port in METRICS_PORTS.items():
        assert f"{name}:{port}" in targets
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in SERVICES["prometheus"]["volumes"]


def test_every_variable_is_documented_in_env_example_without_secrets() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert used <= documented, f"undocumented: {sorted(used - documented)}"
    for line in example.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#") and re.search("PASSWORD|TOKEN|SECRET|KEY", key):
            assert value == "", f"{key} must not carry a value in .env.example"
