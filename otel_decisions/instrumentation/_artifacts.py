"""Decision artifacts on every flow run, with no code: what the AI decided, on the run's page in Prefect.

When a flow run ends (completed or failed; not when it suspends, it runs again), the instrumentor
creates two artifacts from what this process recorded in the run:

- a table, key ``decisions-<flow name>``: one row per decision (up to 1000) with its outcome,
  confidence, threshold, model version, review status and decision id;
- a markdown summary, key ``decisions-<flow name>-summary``: counts by outcome, below threshold,
  awaiting review, reviews and overrides, model versions, and where the full trace and the
  evidence report are (``trace_url``, or the commands that export them).

Values come from the records as stored: a value the privacy policy masks is masked here too, and no
input or subject id is shown. Decisions recorded in other processes (a process-pool or Dask task
runner) are not in this process's table; the summary says so and names the report command that
reads them all from the store. Setting ``flow_artifacts=False`` turns this off. Creating them never
fails the flow run: an error is logged once.

Example::

    table, summary = flow_artifacts(ledger, flow_run_id, "credit-decisioning", trace_id, settings, True)
"""

from __future__ import annotations

import logging
import re
from typing import Any

from otel_decisions import _runtime
from otel_decisions.capture import MAX_LEDGER_ROWS, FlowLedger, registry
from otel_decisions.errors import FieldError

logger = logging.getLogger("otel_decisions")
_SYNC: dict[str, Any] = {"_sync": True}  # Prefect's async_dispatch: the sync variant even in an async flow

TABLE_COLUMNS = (
    "decision_id",
    "type",
    "outcome",
    "confidence",
    "threshold",
    "model_version",
    "review",
    "recorded_earlier",
)
"""The table artifact's columns, in order (``recorded_earlier``: recorded before this run, or before it suspended,
and returned from Prefect's cache or reviewed now)."""


def artifact_key(flow_name: str, suffix: str = "") -> str:
    """``decisions-<flow name>[-suffix]`` in the characters Prefect allows (lower-case letters, digits, dashes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", flow_name.lower()).strip("-")[:60] or "flow"
    return f"decisions-{slug}" + (f"-{suffix}" if suffix else "")


def _review_status(decision_id: str, required: bool) -> str:
    review = registry.review_of(decision_id)
    if review is None:
        return "awaiting review" if required else "not required"
    action, new_outcome = review
    return {
        "approve": "approved",
        "override": f"overridden: {new_outcome}" if new_outcome else "overridden",
        "escalate": "escalated",
        "reject": "rejected",
        "comment": "commented" if not required else "awaiting review (commented)",
    }.get(action, action)


def table_rows(ledger: FlowLedger) -> list[dict[str, Any]]:
    """One row per listed decision (from its stored, masked attributes) with its review status now."""
    rows = []
    for row in ledger.rows:
        out = {column: row.get(column) for column in TABLE_COLUMNS[:6]}
        out["review"] = _review_status(str(row["decision_id"]), bool(row.get("review_required")))
        out["recorded_earlier"] = bool(row.get("earlier"))
        rows.append(out)
    return rows


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def md_text(value: Any, limit: int | None = None) -> str:
    """*value* as inline markdown text for Prefect's renderer: HTML and markdown characters escaped, on one
    line, at most *limit* characters (None: whole). Used by the artifacts and the review forms."""
    text = " ".join(str(value).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def summary_markdown(
    ledger: FlowLedger,
    flow_run_id: str,
    flow_name: str,
    trace_id: str | None,
    trace_url: str | None,
    elsewhere: str | None,
) -> str:
    """The markdown summary of the run's decisions."""
    awaiting = sum(
        1 for decision_id in ledger.review_required if _review_status(decision_id, True).startswith("awaiting")
    )
    awaiting += max(0, ledger.review_required_count - len(ledger.review_required))  # beyond the list: not seen reviewed
    overrides = ledger.review_actions.get("override", 0)
    lines = [
        f"## Decisions of flow run `{flow_run_id}` ({md_text(flow_name)})",
        "",
        "| | |",
        "|---|---|",
        f"| Decisions recorded | **{ledger.decisions - ledger.earlier}** |",
        *(
            [f"| Decisions recorded earlier (a cache hit, or before the run suspended) | {ledger.earlier} |"]
            if ledger.earlier
            else []
        ),
        f"| Below their threshold | {ledger.below_threshold} |",
        f"| Flagged for human review | {ledger.review_required_count} |",
        f"| Awaiting review | **{awaiting}** |",
        f"| Reviews recorded in this run | {ledger.reviews} |",
        f"| Overrides recorded in this run | {overrides} |",
        "",
    ]
    if ledger.outcomes:
        lines += ["| Outcome | Decisions |", "|---|---|"]
        lines += [f"| {md_text(o)} | {n} |" for o, n in sorted(ledger.outcomes.items(), key=lambda kv: (-kv[1], kv[0]))]
        lines.append("")
    if ledger.models:
        lines.append("Model versions: " + ", ".join(f"{md_text(m)} ({n})" for m, n in sorted(ledger.models.items())))
        lines.append("")
    if ledger.decisions > len(ledger.rows):
        lines += [f"The table lists the first {len(ledger.rows)} of {ledger.decisions} decisions.", ""]
    if elsewhere:
        lines += [f"**Not listed:** {md_text(elsewhere)}", ""]
    if trace_id:
        if trace_url:
            lines.append(f"Full trace: [{trace_id}]({trace_url.replace('{trace_id}', trace_id)})")
        else:
            lines.append(f"Full trace: `otel-decisions export-trace {trace_id}` (OTLP JSON for Jaeger)")
    lines.append(f"Evidence report: `otel-decisions report --flow-run {flow_run_id} --out flow-run.html`")
    return "\n".join(lines) + "\n"


def _elsewhere(task_runner: Any) -> str | None:
    from otel_decisions.instrumentation import _workers

    where = _workers.out_of_process(task_runner)
    if where is None:
        return None
    return (
        f"this flow's tasks run in {where}: decisions recorded there are in the store, not in this table; "
        "the evidence report below lists every one"
    )


def prepared(flow_run: Any, flow: Any, trace_id: str | None) -> tuple[str, str, list[dict[str, Any]], str, int] | None:
    """(table key, summary key, table rows, summary markdown, decisions) for a flow run that ended, or None (off, or
    nothing to show). Takes this process's ledger of the run."""
    settings = _runtime.get_runtime().settings
    flow_run_id = str(flow_run.id)
    ledger = registry.pop_ledger(flow_run_id)
    if not settings.flow_artifacts or ledger is None:
        return None
    elsewhere = _elsewhere(getattr(flow, "task_runner", None))
    if not ledger.decisions and not ledger.reviews and elsewhere is None:
        return None  # no decisions, no reviews: no artifact
    name = str(getattr(flow, "name", "") or "flow")
    rows = table_rows(ledger)
    summary = summary_markdown(ledger, flow_run_id, name, trace_id, settings.trace_url, elsewhere)
    return artifact_key(name), artifact_key(name, "summary"), rows, summary, ledger.decisions


def started(flow_run: Any) -> None:
    """A flow run starts in this process: list what it records, when artifacts are on. Never raises."""
    try:
        if flow_run is not None and _runtime.get_runtime().settings.flow_artifacts:
            registry.start_ledger(str(flow_run.id))
    except FieldError as exc:
        _runtime.warn_bad_settings(exc)
    except Exception as exc:  # noqa: BLE001
        _runtime.warn_once("artifacts-start", f"otel-decisions: cannot list the flow run's decisions: {exc!r}")


def _description(rows: list[dict[str, Any]], total: int) -> str:
    shown = f"{len(rows)} of {total}" if total > len(rows) else str(total)
    return f"AI decisions recorded in this flow run ({shown}; values as stored, masked values masked)."


def _not_created(exc: Exception) -> None:
    """Say why the artifacts were not created: bad settings once, with the fix; any other error once per kind."""
    if isinstance(exc, FieldError):
        _runtime.warn_bad_settings(exc)
    else:
        _runtime.warn_once(
            f"artifacts:{type(exc).__name__}",
            f"otel-decisions: the flow run's decision artifacts were not created: {exc!r}",
        )


def publish(flow_run: Any, flow: Any, trace_id: str | None) -> None:
    """Create the run's decision artifacts (sync flows). Never raises."""
    try:
        made = prepared(flow_run, flow, trace_id)
        if made is None:
            return
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        table_key, summary_key, rows, summary, total = made
        if rows:
            create_table_artifact(table=rows, key=table_key, description=_description(rows, total), **_SYNC)
        create_markdown_artifact(
            markdown=summary, key=summary_key, description="Summary of the run's AI decisions", **_SYNC
        )
    except Exception as exc:  # noqa: BLE001 - the flow run's result stands
        _not_created(exc)


async def apublish(flow_run: Any, flow: Any, trace_id: str | None) -> None:
    """Create the run's decision artifacts (async flows). Never raises."""
    try:
        made = prepared(flow_run, flow, trace_id)
        if made is None:
            return
        from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

        table_key, summary_key, rows, summary, total = made
        if rows:
            await acreate_table_artifact(table=rows, key=table_key, description=_description(rows, total))
        await acreate_markdown_artifact(
            markdown=summary, key=summary_key, description="Summary of the run's AI decisions"
        )
    except Exception as exc:  # noqa: BLE001 - the flow run's result stands
        _not_created(exc)


__all__ = [
    "MAX_LEDGER_ROWS",
    "TABLE_COLUMNS",
    "apublish",
    "artifact_key",
    "publish",
    "started",
    "summary_markdown",
    "table_rows",
]
