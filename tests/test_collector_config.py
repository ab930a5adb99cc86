"""Pure-Python checks of collector_config/: the promises the configs make, without running them.

The e2e tests (tests/e2e, marker ``e2e``) run the same files with the real binaries; these
checks catch a broken promise (a queue that is not persistent, retries that give up, a
component missing from the builder manifest, drift between the production and test configs)
in milliseconds, on machines without Go.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_decisions.store import schema
from otel_decisions.store.mapping import TRACES_COLUMNS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "collector_config"
COLLECTOR_CONFIGS = sorted(CONFIG_DIR.glob("otelcol*.yaml"))
PINNED = "v0.161.0"
PINNED_STABLE = "v1.67.0"

# component type -> Go module (last path element) in builder-config.yaml
MODULE_OF_TYPE = {
    "otlp": "otlpreceiver",
    "memory_limiter": "memorylimiterprocessor",
    "batch": "batchprocessor",
    "redaction": "redactionprocessor",
    "transform": "transformprocessor",
    "clickhouse": "clickhouseexporter",
    "otlp_grpc": "otlpexporter",
    "otlp_http": "otlphttpexporter",
    "debug": "debugexporter",
    "file": "fileexporter",
    "file_storage": "filestorage",
    "health_check": "healthcheckextension",
}
ENV_REF = re.compile(r"\$\{env:([A-Z0-9_]+)(:-[^}]*)?\}")


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _types(config: dict[str, Any]) -> set[str]:
    used: set[str] = set()
    for section in ("receivers", "processors", "exporters", "extensions"):
        used.update(name.split("/")[0] for name in (config.get(section) or {}))
    return used


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return _load(CONFIG_DIR / "otelcol.yaml")


def test_every_config_parses_and_every_env_reference_has_a_default() -> None:
    assert COLLECTOR_CONFIGS, "no collector configs found"
    for path in [*COLLECTOR_CONFIGS, CONFIG_DIR / "jaeger-e2e.yaml"]:
        _load(path)
        for name, default in ENV_REF.findall(path.read_text()):
            # passwords may default to empty; everything else must work with no environment
            assert default, f"{path.name}: ${{env:{name}}} has no default"


def test_every_pipeline_component_is_defined_and_every_defined_one_used() -> None:
    for path in COLLECTOR_CONFIGS:
        config = _load(path)
        service = config["service"]
        used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
        for name, pipeline in service["pipelines"].items():
            assert pipeline["processors"][0] == "memory_limiter", f"{path.name}:{name}: memory_limiter must be first"
            for section in used:
                used[section].update(pipeline.get(section, []))
        for section, names in used.items():
            assert names == set(config[section]), f"{path.name}: {section} defined {set(config[section])} used {names}"
        assert set(service["extensions"]) == set(config["extensions"]), path.name


def test_builder_manifest_has_exactly_the_components_the_configs_use() -> None:
    manifest = _load(CONFIG_DIR / "builder-config.yaml")
    modules: dict[str, str] = {}
    for section in ("receivers", "processors", "exporters", "extensions"):
        for entry in manifest[section]:
            module, version = entry["gomod"].split()
            assert version == PINNED, f"{module} at {version}: every component must be at {PINNED}"
            modules[module.rsplit("/", 1)[1]] = module
    for entry in manifest["providers"]:
        assert entry["gomod"].split()[1] == PINNED_STABLE
    used: set[str] = set()
    for path in COLLECTOR_CONFIGS:
        used |= _types(_load(path))
    assert {MODULE_OF_TYPE[t] for t in used} == set(modules)
    assert manifest["dist"]["name"] == "otelcol-decisions"
    assert "v" + manifest["dist"]["version"] == PINNED == schema.COLLECTOR_VERSION


def test_production_clickhouse_exporter_never_drops_silently(prod: dict[str, Any]) -> None:
    exporter = prod["exporters"]["clickhouse"]
    assert exporter["create_schema"] is False  # the project owns the DDL
    assert exporter["traces_table_name"] == schema.TRACES_TABLE
    assert exporter["endpoint"].startswith("${env:CLICKHOUSE_ENDPOINT")
    queue = exporter["sending_queue"]
    assert queue["enabled"] is True and queue["block_on_overflow"] is True
    assert queue["storage"] in prod["extensions"] and queue["storage"].startswith("file_storage")
    assert queue["storage"] in prod["service"]["extensions"]
    retry = exporter["retry_on_failure"]
    assert retry["enabled"] is True and retry["max_elapsed_time"] in ("0s", 0)
    assert exporter["ttl"] in ("0s", 0)


def test_production_receives_otlp_on_grpc_and_http_and_checks_health(prod: dict[str, Any]) -> None:
    protocols = prod["receivers"]["otlp"]["protocols"]
    assert {"grpc", "http"} <= set(protocols)
    assert "health_check" in prod["service"]["extensions"]
    assert prod["exporters"]["otlp_grpc/jaeger"]["sending_queue"]["storage"] == "file_storage/queue"


def test_redaction_never_touches_ids_or_integrity_hashes(prod: dict[str, Any]) -> None:
    from otel_decisions import semconv

    redaction = prod["processors"]["redaction"]
    assert redaction["allow_all_keys"] is True
    for key in (semconv.DECISION_ID, semconv.DECISION_INPUTS_DIGEST, semconv.DECISION_INTEGRITY_HASH,
                semconv.DECISION_INTEGRITY_PREV_HASH):
        assert key in redaction["ignored_keys"]
    patterns = [re.compile(p) for p in redaction["blocked_values"]]
    must_mask = ["card 4111 1111 1111 1111", "ssn 123-45-6789", "mail jane.doe@example.com"]
    must_keep = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # a digest with digit runs
        "1732668000000000000",  # a nanosecond timestamp
        '{"income": 85000, "debt": 12000}',
        "09a1c33e-0f6e-4bbb-9d92-f6c748bc94b7",
    ]
    for text in must_mask:
        assert any(p.search(text) for p in patterns), text
    for text in must_keep:
        assert not any(p.search(text) for p in patterns), text


def test_e2e_config_shares_the_production_jaeger_pipeline(prod: dict[str, Any]) -> None:
    e2e = _load(CONFIG_DIR / "otelcol-e2e.yaml")
    for name in ("memory_limiter", "redaction", "transform/jaeger"):
        assert e2e["processors"][name] == prod["processors"][name], name
    assert e2e["service"]["pipelines"]["traces/jaeger"]["processors"] == prod["service"]["pipelines"]["traces/jaeger"]["processors"]
    ours, theirs = e2e["exporters"]["otlp_grpc/jaeger"], prod["exporters"]["otlp_grpc/jaeger"]
    for key in ("tls", "sending_queue"):
        assert ours[key] == theirs[key], key
    # same variable, different default host (loopback vs the compose service name)
    assert ENV_REF.match(ours["endpoint"]).group(1) == ENV_REF.match(theirs["endpoint"]).group(1)  # type: ignore[union-attr]


# --- the DDL we own is the exporter's, byte for byte ---------------------------------------------


def _exporter_source() -> Path | None:
    if shutil.which("go") is None:
        return None
    gomodcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=False).stdout.strip()
    path = Path(gomodcache or os.path.expanduser("~/go/pkg/mod")) / (
        f"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter@{PINNED}/internal/sqltemplates"
    )
    return path if path.is_dir() else None


def test_schema_ddl_equals_the_pinned_clickhouse_exporter_templates() -> None:
    source = _exporter_source()
    if source is None:
        pytest.skip(f"clickhouseexporter@{PINNED} source not in the Go module cache: run scripts/build-binaries")
    pairs = {
        "traces_table.sql": schema._TRACES_TABLE_SQL,
        "traces_id_ts_lookup_table.sql": schema._TRACES_ID_TS_TABLE_SQL,
        "traces_id_ts_lookup_mv.sql": schema._TRACES_ID_TS_MV_SQL,
    }
    for name, ours in pairs.items():
        assert ours.rstrip("\n") == (source / name).read_text().rstrip("\n"), name
    insert = (source / "traces_insert.sql").read_text()
    columns = [c.strip() for c in insert[insert.index("(") + 1 : insert.index(")")].split(",")]
    assert tuple(columns) == TRACES_COLUMNS
