"""The end-to-end demo: example flows → decision spans → ClickHouse → compliance summary + HTML report.

It runs the flows in ``examples/`` (credit decisioning, clinical triage, and an existing flow
captured with zero code changes) against the embedded chDB database (default) or a DSN, the way
a user would: ``configure()`` + ``PrefectInstrumentor().instrument()`` and the public API.

Example::

    from otel_decisions.demo import run_demo
    result = run_demo(applicants=200)
    print(result.report_path)
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from otel_decisions.errors import OtelDecisionsError
from otel_decisions.settings import load_settings

EXAMPLES = ("credit_decisioning", "clinical_triage", "existing_flow")

SUMMARY_QUERIES: tuple[tuple[str, str, tuple[str, ...], int], ...] = (
    (
        "adverse_action_reasons",
        "Adverse decisions and their principal reasons (Reg B 1002.9)",
        (
            "decision_id",
            "model_version",
            "principal_reason_1",
            "principal_reason_2",
            "principal_reason_3",
            "principal_reason_4",
        ),
        5,
    ),
    (
        "unreviewed_low_confidence",
        "Low-confidence decisions with no human review (AI Act 14, GDPR 22(3))",
        ("decision_id", "decision_type", "outcome", "confidence", "model_name", "model_version", "why"),
        5,
    ),
    (
        "override_rate_by_model",
        "Human overrides by model version",
        ("model_name", "model_version", "decisions", "reviewed", "overridden", "override_rate_of_reviewed"),
        10,
    ),
    (
        "unapproved_model_decisions",
        "Decisions by model versions not approved at decision time",
        ("decision_id", "model_name", "model_version", "decision_type", "outcome"),
        5,
    ),
    (
        "outcome_rates_by_segment",
        "Outcome rates by segment with adverse-impact ratio (four-fifths rule)",
        ("segment", "decisions", "favourable", "favourable_rate", "adverse_impact_ratio", "below_four_fifths"),
        10,
    ),
)
"""(query, title, columns shown, rows shown) of the summary the demo prints."""


@dataclass
class DemoResult:
    """What the demo did and where it left things."""

    dsn: str
    report_path: Path
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    decisions_stored: int = 0
    reviews_stored: int = 0
    seconds: float = 0.0
    flow_run_id: str | None = None
    """The credit-decisioning flow run (its decision artifacts are in Prefect; ``report --flow-run`` shows it)."""


def examples_dir() -> Path:
    """``examples/`` of a source checkout, else the copy packaged in the wheel."""
    checkout = Path(__file__).resolve().parent.parent / "examples"
    if checkout.is_dir():
        return checkout
    packaged = Path(__file__).resolve().parent / "_examples"
    if packaged.is_dir():
        return packaged
    raise OtelDecisionsError("the example flows are missing: reinstall otel-decisions or run from a source checkout")


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples are scripts, not part of the package)."""
    path = examples_dir() / f"{name}.py"
    module_name = f"otel_decisions_examples.{name.strip('_') or 'package'}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise OtelDecisionsError(f"cannot load example {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        del sys.modules[module_name]
        raise OtelDecisionsError(
            f"the demo needs {exc.name!r}: install the examples extra (pip install 'otel-decisions[examples]') "
            "or run `make demo`, which does"
        ) from exc
    return module


def run_demo(
    *,
    applicants: int = 200,
    dsn: str | None = None,
    report_path: Path | None = None,
    seed: int = 7,
    exporter: str = "clickhouse",
    console: Any = None,
) -> DemoResult:
    """Run the example flows into *dsn*, print a compliance summary and write the HTML report.

    ``exporter="clickhouse"`` writes straight to *dsn*; ``"otlp"`` sends to the collector named by
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` and waits until its clickhouse exporter has written the rows.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    import otel_decisions
    from otel_decisions.store.approvals import approve_model
    from otel_decisions.store.client import get_client
    from otel_decisions.store.schema import apply_migrations

    console = console or Console()
    if exporter not in ("clickhouse", "otlp"):
        raise OtelDecisionsError(f"--exporter must be 'clickhouse' or 'otlp', got {exporter!r}")
    if applicants < 1:
        raise OtelDecisionsError(f"--applicants must be at least 1, got {applicants}")
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    fresh = dsn is None
    settings = load_settings(dsn=dsn)
    if fresh:
        # The demo's own store, spool and key, beside (never inside) the user's: a re-run replaces it.
        demo_dir = settings.data_dir / "demo"
        settings = load_settings(
            data_dir=str(demo_dir), dsn=f"chdb://{(demo_dir / 'chdb').resolve()}?database=otel_demo"
        )
    dsn = settings.resolved_dsn
    report_path = (report_path or Path("otel-decisions-report.html")).resolve()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # The temporary Prefect server logs cancelled background flushes as errors when it stops.
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
    # its temporary Prefect server may take longer than Prefect's default 20 s on a busy machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

    if fresh:  # the previous demo run's data only (from a session in another database: this one goes)
        store = get_client(dsn.split("?", 1)[0], role="admin")
        store.command("DROP DATABASE IF EXISTS otel_demo SYNC")
        store.close()
    client = get_client(dsn, role="admin")
    apply_migrations(client)
    stored_before = _count(client, "decisions", "decision_id")
    reviews_before = _count(client, "decision_reviews", "review_id")
    # The model-risk function approved the champion models before these runs; the examples'
    # challenger and fraud models are left unapproved on purpose (unapproved_model_decisions).
    approved_from = datetime.now(UTC) - timedelta(days=90)
    for model_name, model_version in load_example("__init__").APPROVED_MODELS:
        approve_model(
            client,
            model_name,
            model_version,
            approved_by="model-risk-committee",
            approved_from=approved_from,
            note="approved for production use (demo)",
        )

    otel_decisions.configure(
        service_name="otel-decisions-demo",
        service_version=otel_decisions.__version__,
        environment="demo",
        exporters=["otlp" if exporter == "otlp" else "clickhouse"],
        dsn=dsn,
        data_dir=str(settings.data_dir),
    )
    instrumentor = otel_decisions.PrefectInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()

    counts: dict[str, dict[str, int]] = {}
    plan = (
        ("credit_decisioning", "Credit decisioning", {"n": applicants, "seed": seed}),
        ("clinical_triage", "Clinical triage (breast-cancer data set)", {"seed": seed}),
        ("existing_flow", "Existing flow, zero code changes", {"seed": seed}),
    )
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task("Running example flows", total=len(plan) + 1)
        for module_name, label, kwargs in plan:
            progress.update(bar, description=f"Running: {label}")
            module = load_example(module_name)
            counts[module_name] = dict(module.run(**kwargs) or {})
            progress.advance(bar)
        progress.update(bar, description="Delivering decisions to ClickHouse")
        otel_decisions.force_flush(120_000)
        progress.advance(bar)
        if exporter == "clickhouse":  # over OTLP the rows arrive later; the records steps need them
            lifecycle_steps = _records_management(client, started_at)
            otel_decisions.force_flush(120_000)
        else:
            lifecycle_steps = {}

    recorded = sum(c.get("decisions", 0) for c in counts.values())
    stored = _count(client, "decisions", "decision_id") - stored_before
    deadline = time.monotonic() + (180 if exporter == "otlp" else 0)
    while stored < recorded and time.monotonic() < deadline:  # the collector batches and retries
        time.sleep(1.0)
        stored = _count(client, "decisions", "decision_id") - stored_before
    reviews = _count(client, "decision_reviews", "review_id") - reviews_before
    if recorded and stored < recorded:
        raise OtelDecisionsError(
            f"only {stored} of {recorded} decisions reached {dsn} after the flush; "
            "run `otel-decisions delivery status` and `otel-decisions delivery drain`"
        )
    _print_summary(console, client)

    from otel_decisions.oversight import write_evidence_report
    from otel_decisions.store.client import redact_dsn

    write_evidence_report(client, report_path, database=redact_dsn(dsn))  # what `otel-decisions report` runs
    credit_run = str(
        client.command(
            "SELECT argMax(flow_run_id, timestamp) FROM decisions WHERE flow_name = 'credit-decisioning' "
            "AND timestamp >= {started:DateTime64(6)}",
            parameters={"started": started_at.replace(tzinfo=None)},
        )
        or ""
    )
    counts["records_management"] = lifecycle_steps
    result = DemoResult(
        dsn=dsn,
        report_path=report_path,
        counts=counts,
        decisions_stored=stored,
        reviews_stored=reviews,
        seconds=time.perf_counter() - started,
        flow_run_id=credit_run or None,
    )
    _print_next_steps(console, result)
    return result


DEMO_ERASURE_REQUEST = "DSR-DEMO-0001"
"""The demo's erasure request reference (``query run erasure_outcome --param request=DSR-DEMO-0001``)."""


def _records_management(client: Any, started_at: datetime) -> dict[str, int]:
    """What the records, model-risk and privacy teams do with the run's decisions, through the public API:
    an underwriter's correction, a legal hold on a complainant, an incident on the challenger model and a
    data subject's erasure request (kept: the FINRA obligation applies)."""
    import otel_decisions
    from otel_decisions._runtime import get_runtime
    from otel_decisions.lifecycle import erase_subject, open_incident, place_hold

    examples = load_example("credit_decisioning")
    denied = client.query(
        "SELECT decision_id, subject_id, JSONExtractInt(inputs, 'employment_years') FROM decisions FINAL "
        "WHERE decision_type = {t:String} AND outcome = 'deny' AND timestamp >= {since:DateTime64(3)} "
        "ORDER BY timestamp, decision_id LIMIT 2",
        parameters={"t": examples.DECISION_TYPE, "since": started_at.replace(tzinfo=None)},
    ).result_rows
    steps = {"corrections": 0, "holds": 0, "incidents": 0, "erasures": 0}
    if denied:
        decision_id, subject, years = denied[0]
        otel_decisions.record_correction(
            decision_id,
            field="inputs.employment_years",
            original=years,
            value=int(years) + 4,
            corrected_by="underwriter-02",
            reason="employment letter shows four more years with the same employer",
            reference="UW-DEMO-17",
        )
        place_hold(
            client, "subject", [subject], reason="complaint about a denial", reference="CFPB-DEMO-1", actor="legal-01"
        )
        steps.update(corrections=1, holds=1)
        other = denied[-1][1]
        erase_subject(
            client, other, request=DEMO_ERASURE_REQUEST, actor="dpo-01", key=get_runtime().privacy.signing_key
        )  # the key the demo's records are signed with
        steps["erasures"] = 1
    open_incident(
        client,
        "challenger scores drift after the bureau extract changed",
        examples.MODEL_NAME,
        examples.CHALLENGER_VERSION,
        actor="model-risk-committee",
        reference="INC-DEMO-3",
        opened_at=started_at - timedelta(minutes=1),
    )
    steps["incidents"] = 1
    return steps


def _count(client: Any, table: str, key: str) -> int:
    return int(client.command(f"SELECT uniqExact({key}) FROM {table}"))


def _print_summary(console: Any, client: Any) -> None:
    from rich.table import Table

    from otel_decisions.catalogue import run_query
    from otel_decisions.lifecycle import log_access

    console.rule("[bold]Compliance summary")
    for name, title, wanted, limit in SUMMARY_QUERIES:
        result = run_query(client, name)
        log_access(
            client,
            command="demo summary",
            query_name=name,
            parameters=result.parameters,
            columns=result.columns,
            rows=result.rows,
        )
        columns = [c for c in wanted if c in result.columns] or result.columns[:6]
        index = [result.columns.index(c) for c in columns]
        shown = min(limit, len(result.rows))
        table = Table(
            title=f"{title}\n[dim]{name}: {len(result.rows)} rows, first {shown} shown[/]",
            title_justify="left",
            expand=False,
        )
        for column in columns:
            table.add_column(column, overflow="fold", max_width=34 if "reason" in column else 20)
        for row in result.rows[:limit]:
            table.add_row(*[_cell(row[i], columns[k]) for k, i in enumerate(index)])
        console.print(table)


def _cell(value: Any, column: str = "") -> str:
    if column.endswith("_id") and isinstance(value, str) and len(value) > 12:
        return value[:8] + "…"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    text = str(value)
    return text if len(text) <= 64 else text[:61] + "…"


def cli_command() -> str:
    """How to run ``otel-decisions`` from this shell: the bare name when PATH finds this installation's
    script, else its path (relative to the working directory when shorter), so it works as pasted."""
    script = Path(sys.executable).parent / "otel-decisions"
    found = shutil.which("otel-decisions")
    if found and Path(found).resolve() == script.resolve():
        return "otel-decisions"
    if not script.exists():
        return f"{sys.executable} -m otel_decisions.cli"
    try:
        relative = script.relative_to(Path.cwd())
    except ValueError:
        return str(script)
    return str(relative) if relative.parts[0].startswith(".") else f"./{relative}"


def _print_next_steps(console: Any, result: DemoResult) -> None:
    dsn = shlex.quote(result.dsn)
    cli = cli_command()
    console.rule("[bold]Done")
    console.print(
        f"[green]{result.decisions_stored}[/] decisions and [green]{result.reviews_stored}[/] reviews stored "
        f"in {result.seconds:.0f} s.\n"
        f"Evidence report: [bold]{result.report_path}[/] (self-contained; open it in any browser)\n"
        f"Database:        [bold]{dsn}[/]\n\n"
        "Next:\n"
        f"  {cli} query list\n"
        f"  {cli} query run adverse_action_reasons --dsn {dsn} --format table\n"
        f"  {cli} query run override_rate_by_model --dsn {dsn} --format csv\n"
        + (
            f"  {cli} report --flow-run {result.flow_run_id} --dsn {dsn} --out credit-run.html\n"
            if result.flow_run_id
            else ""
        )
        + "  Each flow run's decisions are also artifacts in Prefect (its Artifacts tab, under `prefect server start`).\n"
        "  Traces in Jaeger: `docker compose up` runs the full stack (UI on http://localhost:16686), or\n"
        f"  `{cli} export-trace TRACE_ID --format otlp-json --dsn {dsn}` writes a trace Jaeger can load.",
        soft_wrap=True,  # commands stay on one line, whatever the terminal's width, so they paste as they are
        highlight=False,
    )
