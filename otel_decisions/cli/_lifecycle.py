"""Life-cycle commands: ``hold``, ``retention``, ``erase``, ``correct``, ``notice`` and ``incident``.

Every one of them is recorded in the store (who, when, why); disposal and erasure run as the admin
role and leave signed tombstones that ``otel-decisions verify`` checks.

Example::

    $ otel-decisions hold add --subject $(otel-decisions pseudonymise A-0001) --reason "CFPB inquiry" \\
          --reference CFPB-2026-17 --by legal-7
    $ otel-decisions retention apply --dry-run --by records-manager
    $ otel-decisions erase $(otel-decisions pseudonymise A-0001) --request DSR-2026-114 --by dpo-1
    $ otel-decisions correct DECISION_ID --field inputs.income --value 52000 --reason "payslip" --by analyst-4
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from otel_decisions.cli._common import console, err_console, handle_errors
from otel_decisions.cli._storage import DSN_HELP, _check_format, _client, _parse_params, _print, _when
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.output.tables import FORMATS, render_rows

hold_app = typer.Typer(help="Legal holds: keep records whatever their retention date.", no_args_is_help=True)
retention_app = typer.Typer(help="Retention policy and disposal of expired records.", no_args_is_help=True)
incident_app = typer.Typer(help="The incident register (EU AI Act Art. 72/73).", no_args_is_help=True)

By = Annotated[str, typer.Option("--by", help="Who does this (user id); recorded with it.")]
Dsn = Annotated[Optional[str], typer.Option("--dsn", help=DSN_HELP)]


def register(app: typer.Typer) -> None:
    """Add the life-cycle commands to *app*."""
    app.add_typer(hold_app, name="hold")
    app.add_typer(retention_app, name="retention")
    app.add_typer(incident_app, name="incident")
    app.command("erase")(erase)
    app.command("correct")(correct)
    app.command("notice")(notice)


def _key() -> bytes | None:
    """The pseudonym key, to sign disposal and erasure records (never created here: without one they refuse)."""
    from otel_decisions.privacy import existing_hmac_key
    from otel_decisions.settings import load_settings

    return existing_hmac_key(load_settings())


def _admin(dsn: str | None) -> Any:
    from otel_decisions.store.schema import apply_migrations

    client = _client(dsn, "admin")
    apply_migrations(client)
    return client


# --- hold -----------------------------------------------------------------------------------------
@hold_app.command("add")
@handle_errors
def hold_add(
    by: By,
    reason: Annotated[str, typer.Option("--reason", help="Why the records must be kept (litigation, inquiry...).")],
    reference: Annotated[str, typer.Option("--reference", help="Case, matter or inquiry reference.")],
    subject: Annotated[Optional[str], typer.Option("--subject", help="Pseudonymised subject id.")] = None,
    flow_run: Annotated[Optional[str], typer.Option("--flow-run", help="Prefect flow run id.")] = None,
    decision_type: Annotated[
        Optional[str], typer.Option("--decision-type", help="Every decision of this type.")
    ] = None,
    decision: Annotated[list[str], typer.Option("--decision", help="A decision id; repeat for several.")] = [],  # noqa: B006
    query: Annotated[
        Optional[str], typer.Option("--query", help="Hold the decisions a catalogue query returns.")
    ] = None,
    param: Annotated[list[str], typer.Option("--param", "-p", help="NAME=VALUE for --query.")] = [],  # noqa: B006
    dsn: Dsn = None,
) -> None:
    """Place a legal hold on a subject, a flow run, a decision type, decisions, or a query's result."""
    from otel_decisions.lifecycle import place_hold

    chosen = [
        (scope, value)
        for scope, value in (
            ("subject", subject),
            ("flow_run", flow_run),
            ("decision_type", decision_type),
            ("decision", decision or None),
            ("query", query),
        )
        if value
    ]
    if len(chosen) != 1:
        raise OtelDecisionsError(
            "give exactly one of --subject, --flow-run, --decision-type, --decision or --query for the hold"
        )
    scope, value = chosen[0]
    client = _admin(dsn)
    try:
        source = ""
        if scope == "query":
            from otel_decisions.catalogue import get_query, run_query

            entry = get_query(str(value))
            result = run_query(client, entry, _parse_params(param))
            if result.rows and "decision_id" not in result.columns:
                raise OtelDecisionsError(f"query {entry.name!r} returns no decision_id column: it cannot define a hold")
            index = result.columns.index("decision_id") if result.rows else 0
            targets = [str(row[index]) for row in result.rows]
            scope, source = (
                "decision",
                f"query {entry.name} {json.dumps(result.parameters, default=str, sort_keys=True)}",
            )
        else:
            targets = list(value) if isinstance(value, list) else [str(value)]
        hold = place_hold(client, scope, targets, reason=reason, reference=reference, actor=by, source=source)
    finally:
        client.close()
    console.print(f"hold {hold.hold_id} placed on {scope} {hold.target} ({reference})", highlight=False)


@hold_app.command("release")
@handle_errors
def hold_release(
    hold_id: Annotated[str, typer.Argument(help="The hold's id (see `hold list`).")],
    by: By,
    reason: Annotated[str, typer.Option("--reason", help="Why the hold ends (case closed...).")],
    dsn: Dsn = None,
) -> None:
    """Release a hold (recorded; the placement stays on record)."""
    from otel_decisions.lifecycle import release_hold

    client = _admin(dsn)
    try:
        count = release_hold(client, hold_id, actor=by, reason=reason)
    finally:
        client.close()
    console.print(f"hold {hold_id} released ({count} target(s))", highlight=False)


@hold_app.command("list")
@handle_errors
def hold_list(
    all_: Annotated[bool, typer.Option("--all", help="Every placement and release, not only active holds.")] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "table",
    dsn: Dsn = None,
) -> None:
    """List active holds (or their whole history)."""
    from otel_decisions.lifecycle import active_holds, hold_history

    _check_format(fmt)
    client = _client(dsn, "reader")
    try:
        if all_:
            columns = ["at", "hold_id", "action", "scope", "targets", "reason", "reference", "actor"]
            rows = hold_history(client)
        else:
            columns = ["hold_id", "scope", "target", "reason", "reference", "actor", "source", "at"]
            rows = [
                (h.hold_id, h.scope, h.target, h.reason, h.reference, h.actor, h.source, h.at)
                for h in active_holds(client)
            ]
    finally:
        client.close()
    _print(render_rows(columns, rows, fmt, title="Legal holds"))


# --- retention -------------------------------------------------------------------------------------
def _policy() -> Any:
    from otel_decisions.retention import RetentionPolicy
    from otel_decisions.settings import load_settings

    return RetentionPolicy.from_settings(load_settings().retention_policy)


@retention_app.command("policy")
@handle_errors
def retention_policy(
    record: Annotated[bool, typer.Option("--record", help="Record the policy in force in the store.")] = False,
    by: Annotated[str, typer.Option("--by", help="Who records it (with --record).")] = "",
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "table",
    dsn: Dsn = None,
) -> None:
    """Show the retention rules in force (built-in + OTEL_DECISIONS_RETENTION_POLICY) and the recorded history."""
    _check_format(fmt)
    policy = _policy()
    rows = [
        (r.name, r.period_text(), "yes" if r.obligation else "no", r.basis, ", ".join(r.regulations))
        for r in policy.rules.values()
    ]
    _print(
        render_rows(
            ["class", "period", "legal obligation", "basis", "implied by regulations"],
            rows,
            fmt,
            title=f"Retention policy {policy.policy_id}",
        )
    )
    if record:
        from otel_decisions.lifecycle import record_policy

        if not by.strip():
            raise OtelDecisionsError("--by: say who records the policy")
        client = _admin(dsn)
        try:
            new = record_policy(client, policy, actor=by, source="retention policy --record")
        finally:
            client.close()
        err_console.print(f"policy {policy.policy_id} " + ("recorded" if new else "is already the latest recorded"))


@retention_app.command("apply")
@handle_errors
def retention_apply(
    by: By,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be disposed of; change nothing.")] = False,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Judge by this day (ISO); default today.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "table",
    dsn: Dsn = None,
) -> None:
    """Dispose of records past their retain_until that no legal hold covers, and record the disposal."""
    from otel_decisions.lifecycle import apply_retention, due_for_disposal

    _check_format(fmt)
    day = _when(as_of, "--as-of")
    client = _admin(dsn)
    try:
        if dry_run:
            due, held = due_for_disposal(client, day)
            _print(render_rows(["decision_id", "retain_until", "basis"], due, fmt, title="Due for disposal"))
            err_console.print(
                f"dry run: {len(due)} decisions due, {held} past retain_until but on hold; nothing changed"
            )
            return
        result = apply_retention(client, actor=by, key=_key(), as_of=day, policy=_policy())
    finally:
        client.close()
    console.print(
        f"disposal {result.operation_id}: {len(result.deleted)} decisions ({result.links} records with their reviews "
        f"and events) removed, {result.held} kept on hold",
        highlight=False,
    )


# --- erasure ----------------------------------------------------------------------------------------
@handle_errors
def erase(
    subject_id: Annotated[str, typer.Argument(help="Pseudonymised subject id (`otel-decisions pseudonymise RAW_ID`).")],
    request: Annotated[str, typer.Option("--request", help="The erasure request's reference.")],
    by: By,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be erased and kept.")] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "table",
    dsn: Dsn = None,
) -> None:
    """GDPR Art. 17: make a subject's records unlinkable unless an obligation keeps them (named per record)."""
    from otel_decisions.lifecycle import erase_subject

    _check_format(fmt)
    client = _admin(dsn)
    try:
        result = erase_subject(
            client, subject_id, request=request, actor=by, key=None if dry_run else _key(), dry_run=dry_run
        )
    finally:
        client.close()
    rows = [(d, "made unlinkable", "") for d in result.deleted] + [(d, "kept", why) for d, why in result.kept.items()]
    _print(render_rows(["decision_id", "outcome", "kept_under"], rows, fmt, title=f"Erasure request {request}"))
    verb = "would be" if dry_run else "were"
    err_console.print(
        f"{len(result.deleted)} decisions {verb} made unlinkable, {len(result.kept)} kept under an obligation"
        + (
            ""
            if dry_run
            else f" (erasure {result.operation_id}; `query run erasure_outcome --param request={request}`)"
        )
    )


# --- corrections and notices ----------------------------------------------------------------------
def _recording(dsn: str | None) -> Any:
    """configure() to write straight to the store (a CLI process records one event, then flushes)."""
    import otel_decisions
    from otel_decisions.settings import load_settings

    settings = load_settings(dsn=dsn)
    otel_decisions.configure(exporters=["clickhouse"], dsn=settings.resolved_dsn, durable=False)
    return otel_decisions


def _flush(module: Any) -> None:
    if not module.force_flush(60_000):
        raise OtelDecisionsError(
            "the record was not confirmed by the store in 60 s; run `otel-decisions delivery status`"
        )


@handle_errors
def correct(
    decision_id: Annotated[str, typer.Argument(help="The decision to correct.")],
    field: Annotated[str, typer.Option("--field", help="The wrong field: outcome, reasons, ... or inputs.<key>.")],
    value: Annotated[str, typer.Option("--value", help="The right value (JSON for numbers, lists, objects).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the recorded value was wrong.")],
    by: By,
    original: Annotated[Optional[str], typer.Option("--original", help="The wrong value as recorded.")] = None,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Ticket or evidence.")] = None,
    dsn: Dsn = None,
) -> None:
    """Record a correction: a new record linked to the decision (the original is never changed)."""

    def parsed(text: str | None) -> Any:
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    module = _recording(dsn)
    event_id = module.record_correction(
        decision_id,
        field=field,
        value=parsed(value),
        original=parsed(original),
        corrected_by=by,
        reason=reason,
        reference=reference,
    )
    _flush(module)
    console.print(f"correction {event_id} recorded for decision {decision_id}", highlight=False)


@handle_errors
def notice(
    decision_id: Annotated[str, typer.Argument(help="The decision the notice is about.")],
    channel: Annotated[str, typer.Option("--channel", help="mail, email, portal, ...")],
    by: By,
    sent_at: Annotated[
        Optional[str], typer.Option("--sent-at", help="When it went out (ISO, UTC); default now.")
    ] = None,
    reference: Annotated[Optional[str], typer.Option("--reference", help="The letter's id.")] = None,
    dsn: Dsn = None,
) -> None:
    """Record that an adverse-action notice about a decision went out (Reg B 1002.9)."""
    when = _when(sent_at, "--sent-at")
    module = _recording(dsn)
    event_id = module.record_notice(
        decision_id,
        channel=channel,
        sent_by=by,
        sent_at=when,
        reference=reference,
    )
    _flush(module)
    console.print(f"notice {event_id} recorded for decision {decision_id}", highlight=False)


# --- incidents --------------------------------------------------------------------------------------
@incident_app.command("open")
@handle_errors
def incident_open(
    title: Annotated[str, typer.Option("--title", help="What happened.")],
    model: Annotated[str, typer.Option("--model", help="decision.model.name")],
    by: By,
    version: Annotated[str, typer.Option("--version", help="decision.model.version (empty: every version).")] = "",
    reference: Annotated[str, typer.Option("--reference", help="Ticket or report reference.")] = "",
    since: Annotated[Optional[str], typer.Option("--from", help="Open since (ISO, UTC); default now.")] = None,
    dsn: Dsn = None,
) -> None:
    """Open an incident on a model version."""
    from otel_decisions.lifecycle import open_incident

    start = _when(since, "--from")
    client = _admin(dsn)
    try:
        incident_id = open_incident(
            client,
            title,
            model,
            version,
            actor=by,
            reference=reference,
            opened_at=start,
        )
    finally:
        client.close()
    console.print(f"incident {incident_id} opened on {model} {version or '(every version)'}", highlight=False)


@incident_app.command("close")
@handle_errors
def incident_close(
    incident_id: Annotated[str, typer.Argument(help="The incident's id.")],
    by: By,
    at: Annotated[Optional[str], typer.Option("--at", help="Closed at (ISO, UTC); default now.")] = None,
    dsn: Dsn = None,
) -> None:
    """Close an open incident."""
    from otel_decisions.lifecycle import close_incident

    end = _when(at, "--at")
    client = _admin(dsn)
    try:
        close_incident(client, incident_id, actor=by, closed_at=end)
    finally:
        client.close()
    console.print(f"incident {incident_id} closed", highlight=False)
