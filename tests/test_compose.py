"""docker-compose.yml agrees with the collector config, the CLI, the README and the pinned releases."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _env_refs(text: str) -> set[str]:
    return set(re.findall(r"\$\{env:([A-Z0-9_]+)", text))


def test_images_are_pinned_and_collector_matches_the_ddl_release():
    from otel_decisions.store.schema import COLLECTOR_VERSION

    for name, service in SERVICES.items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name}: neither image nor build"
            continue
        assert ":" in image and not image.endswith(":latest"), f"{name}: image {image!r} is not pinned"
    collector_image = SERVICES["otel-collector"]["image"]
    assert collector_image == f"otel/opentelemetry-collector-contrib:{COLLECTOR_VERSION.lstrip('v')}"
    builder = yaml.safe_load((ROOT / "collector_config" / "builder-config.yaml").read_text())
    assert COLLECTOR_VERSION.lstrip("v") in yaml.safe_dump(builder)
    readme = (ROOT / "README.md").read_text()
    assert COLLECTOR_VERSION in readme and collector_image in readme


def test_prefect_image_matches_the_pinned_prefect():
    import prefect

    assert SERVICES["prefect-server"]["image"].startswith(f"prefecthq/prefect:{prefect.__version__}-")


def test_collector_mounts_the_repo_config_and_sets_only_variables_it_reads():
    collector = SERVICES["otel-collector"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in collector["volumes"] if m.startswith("./")}
    config_path = mounts["./collector_config/otelcol.yaml"]
    assert f"--config={config_path}" in collector["command"]
    config_text = (ROOT / "collector_config" / "otelcol.yaml").read_text()
    refs = _env_refs(config_text)
    for variable in collector["environment"]:
        assert variable in refs, f"compose sets {variable}, which otelcol.yaml never reads"
    assert collector["environment"]["CLICKHOUSE_ENDPOINT"].split("//")[1].split(":")[0] == "clickhouse"
    assert collector["environment"]["JAEGER_OTLP_GRPC_ENDPOINT"].split(":")[0] == "jaeger"
    config = yaml.safe_load(config_text)
    assert config["exporters"]["clickhouse"]["create_schema"] is False
    grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    published = {p.split(":")[1] for p in collector["ports"]}
    assert grpc.rstrip("}").endswith("4317") and http.rstrip("}").endswith("4318")
    assert {"4317", "4318"} <= published


def test_start_order_and_health_checks():
    def condition(service: str, dependency: str) -> str:
        return SERVICES[service]["depends_on"][dependency]["condition"]

    assert condition("schema", "clickhouse") == "service_healthy"
    assert condition("otel-collector", "schema") == "service_completed_successfully"
    assert condition("otel-collector", "jaeger") == "service_healthy"
    assert condition("demo", "prefect-server") == "service_healthy"
    assert "otel-collector" in SERVICES["demo"]["depends_on"]
    for name, service in SERVICES.items():
        for dependency, spec in service.get("depends_on", {}).items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} waits for {dependency} health, which has no check"
    assert "16686:16686" in SERVICES["jaeger"]["ports"]


@pytest.mark.parametrize("service", ["schema", "demo"])
def test_project_services_run_real_cli_commands(service):
    from typer.testing import CliRunner

    from otel_decisions.cli import app

    spec = SERVICES[service]
    assert spec["build"] == "." and (ROOT / "Dockerfile").is_file()
    words = spec["command"]
    options = [w for w in words if w.startswith("--")]
    positional = [w for w in words if not w.startswith("-")][:2]
    command = positional[:2] if positional[0] in ("schema", "query", "delivery", "db", "models") else positional[:1]
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    help_text = re.sub(r"\s+", " ", result.output)
    for option in options:
        assert option in help_text, f"{service}: `{' '.join(command)}` has no option {option}"


def test_demo_runner_sends_over_otlp_to_the_collector():
    demo = SERVICES["demo"]
    assert demo["command"][demo["command"].index("--exporter") + 1] == "otlp"
    assert demo["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector:4318")
