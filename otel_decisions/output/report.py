"""The HTML evidence report: one self-contained file an examiner can open offline.

:func:`write_report` runs the report's catalogue queries (``queries/*.sql``, listed in
:data:`REPORT_QUERIES`) for the period and renders ``templates/report.html.j2`` with Jinja2. The
environment autoescapes, so every value from the database is HTML-escaped by the template engine.
Python only lays the charts out (scales counts to pixels); the markup, the words and the CSS live
in the templates. The file has inline CSS and inline SVG charts: no scripts, fonts or external URLs.

Sections (each with a stable ``id`` and ``data-testid``):

- ``summary``: generation time, database, period, counts;
- ``chart-outcomes``: decisions by outcome and model version;
- ``chart-confidence``: score / confidence distribution per decision type with the threshold in force;
- ``chart-reviews``: review-required, reviewed, overridden and escalated decisions per model version;
- ``table-reviewers``: reviews and overrides per (pseudonymised) reviewer;
- ``table-models``: model inventory with the approval status;
- ``table-adverse``: adverse decisions with their ranked principal reasons;
- ``table-flow-run`` (a report for one flow run only): the run's decisions and reviews in time order.

Example::

    from pathlib import Path
    from otel_decisions.store.client import get_client
    from otel_decisions.output.report import write_report
    write_report(get_client("chdb:///tmp/decisions"), Path("evidence.html"), title="Q1 credit decisions")
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from otel_decisions.catalogue import run_query
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.store.client import database_of

__all__ = [
    "MAX_ADVERSE_ROWS",
    "MAX_FLOW_RUN_ROWS",
    "REPORT_QUERIES",
    "ReportData",
    "collect_report_data",
    "render_report",
    "save_report",
    "write_report",
]

DEFAULT_TITLE = "Decision evidence report"
DEFAULT_ADVERSE_OUTCOMES: tuple[str, ...] = ("deny", "decline")
MAX_ADVERSE_ROWS = 500
"""The adverse-decision table shows at most this many rows (the total is stated)."""
MAX_FLOW_RUN_ROWS = 1000
"""A flow run's audit-trail table shows at most this many rows (the total is stated)."""
FLOW_RUN_QUERY = "flow_run_audit_trail"
"""The catalogue query of a one-flow-run report's audit-trail table."""
_FLOW_RUN_COLUMNS = (
    "timestamp",
    "entry",
    "decision_id",
    "decision_type",
    "outcome",
    "confidence",
    "reasons",
    "model_name",
    "model_version",
    "task_name",
    "reviewer_id",
    "action",
    "integrity_seq",
)
REPORT_QUERIES: tuple[str, ...] = (
    "period_summary",
    "outcomes_by_model_version",
    "score_distribution",
    "thresholds_by_decision_type",
    "human_oversight_by_model",
    "override_rate_by_reviewer",
    "model_inventory",
    "adverse_action_reasons",
)
"""The catalogue queries the report runs (its footer names them)."""
_EPOCH = datetime(1970, 1, 1)
_FAR_FUTURE = datetime(2100, 1, 1)
_BINS = 20
_NO_MODEL = "(no model)"

# Outcome colours: favourable greens/blues, adverse reds, human paths amber/purple; others cycle.
_OUTCOME_COLOURS = {
    "approve": "#2e7d32",
    "approved": "#2e7d32",
    "legit": "#43a047",
    "routine": "#1e88e5",
    "release": "#43a047",
    "deny": "#c62828",
    "decline": "#c62828",
    "fraud": "#d84315",
    "reject": "#c62828",
    "hold": "#d84315",
    "refer": "#f9a825",
    "review": "#f9a825",
    "escalate": "#8e24aa",
    "urgent": "#6a1b9a",
}
_PALETTE = ("#00897b", "#5e35b1", "#fb8c00", "#3949ab", "#7cb342", "#d81b60", "#546e7a", "#00acc1")
_OVERSIGHT_SERIES = {
    "review_required": "#f9a825",
    "reviewed": "#1e88e5",
    "overridden": "#c62828",
    "escalated": "#8e24aa",
}
_REVIEWER_COLUMNS = ("reviewer_id", "reviews", "overrides", "override_rate", "median_seconds_to_review")
_MODEL_COLUMNS = (
    "model_name",
    "model_version",
    "decisions",
    "first_used",
    "last_used",
    "mean_confidence",
    "automated_share",
    "approved_now",
)


@dataclass
class ReportData:
    """Everything the report shows, already fetched from the database.

    *summary* is the ``period_summary`` row (decisions, decision_types, model_versions, adverse,
    review_required, first_decision, last_decision, reviews, overrides). Model names are display
    names: ``(no model)`` for decisions recorded without one.
    """

    title: str
    generated_at: datetime
    database: str
    start: datetime
    end: datetime
    summary: dict[str, Any]
    outcomes_by_model: list[tuple[str, str, str, int]]
    """(model, model version, outcome, decisions)"""
    histogram: list[tuple[str, str, int, int]]
    """(decision type, outcome, bin out of the report's 20 over [0, 1], decisions)"""
    thresholds: dict[str, float | None]
    scored_types: set[str]
    reviews_by_model: list[dict[str, Any]]
    reviewers: list[dict[str, Any]]
    models: list[dict[str, Any]]
    adverse_columns: list[str]
    adverse_rows: list[tuple[Any, ...]]
    adverse_total: int
    adverse_outcomes: tuple[str, ...] = DEFAULT_ADVERSE_OUTCOMES
    flow_run_id: str | None = None
    """Set when the report covers one Prefect flow run only."""
    flow_run_columns: list[str] = dataclasses.field(default_factory=list)
    flow_run_rows: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    flow_run_total: int = 0


def _naive_utc(moment: datetime | None, default: datetime) -> datetime:
    if moment is None:
        return default
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def collect_report_data(
    client: Any,
    *,
    title: str = DEFAULT_TITLE,
    start: datetime | None = None,
    end: datetime | None = None,
    adverse_outcomes: Sequence[str] = DEFAULT_ADVERSE_OUTCOMES,
    database: str | None = None,
    flow_run_id: str | None = None,
) -> ReportData:
    """Run the report's catalogue queries on *client* (a clickhouse-connect client) for [*start*, *end*),
    and for one Prefect flow run's decisions only when *flow_run_id* is given."""
    flow_run = (flow_run_id or "").strip()
    bounds = {"start": _naive_utc(start, _EPOCH), "end": _naive_utc(end, _FAR_FUTURE)}
    period = {**bounds, "flow_run_id": flow_run}
    adverse = tuple(adverse_outcomes)
    (summary,) = run_query(client, "period_summary", {**period, "adverse_outcomes": list(adverse)}).as_dicts()
    outcomes = run_query(client, "outcomes_by_model_version", period).as_dicts()
    histogram = run_query(client, "score_distribution", {**period, "bins": _BINS}).as_dicts()
    thresholds = run_query(client, "thresholds_by_decision_type", period).as_dicts()
    oversight = run_query(client, "human_oversight_by_model", period).as_dicts()
    reviewers = run_query(client, "override_rate_by_reviewer", period).as_dicts()
    models = run_query(client, "model_inventory", period).as_dicts()
    adverse_result = run_query(client, "adverse_action_reasons", {**period, "adverse_outcomes": list(adverse)})
    trail_columns: list[str] = []
    trail_rows: list[tuple[Any, ...]] = []
    if flow_run:
        trail = run_query(client, FLOW_RUN_QUERY, {"flow_run_id": flow_run})
        keep = [trail.columns.index(c) for c in _FLOW_RUN_COLUMNS]
        at = trail.columns.index("timestamp")
        trail_columns = list(_FLOW_RUN_COLUMNS)
        trail_rows = [  # the period applies to the trail too (the query takes the whole run)
            tuple(row[i] for i in keep) for row in trail.rows if bounds["start"] <= row[at] < bounds["end"]
        ]
    return ReportData(
        title=title,
        generated_at=datetime.now(UTC).replace(microsecond=0),
        database=database or database_of(client),
        start=bounds["start"],
        end=bounds["end"],
        summary=summary,
        outcomes_by_model=[
            (str(r["model_name"]) or _NO_MODEL, str(r["model_version"]), str(r["outcome"]), int(r["decisions"]))
            for r in outcomes
        ],
        histogram=[(str(r["decision_type"]), str(r["outcome"]), int(r["bin"]), int(r["decisions"])) for r in histogram],
        thresholds={
            str(r["decision_type"]): (None if r["usual_threshold"] is None else float(r["usual_threshold"]))
            for r in thresholds
        },
        scored_types={str(r["decision_type"]) for r in thresholds if r["scored_decisions"]},
        reviews_by_model=[{**r, "model": str(r["model_name"]) or _NO_MODEL} for r in oversight],
        reviewers=reviewers,
        models=models,
        adverse_columns=adverse_result.columns,
        adverse_rows=adverse_result.rows[:MAX_ADVERSE_ROWS],
        adverse_total=len(adverse_result.rows),
        adverse_outcomes=adverse,
        flow_run_id=flow_run or None,
        flow_run_columns=trail_columns,
        flow_run_rows=trail_rows[:MAX_FLOW_RUN_ROWS],
        flow_run_total=len(trail_rows),
    )


# --- chart layout: positions in SVG user units; the templates draw them ----------------------
@dataclass(frozen=True)
class _LegendEntry:
    x: float
    y: float
    name: str
    colour: str


@dataclass(frozen=True)
class _OutcomeSegment:
    x: float
    width: float
    colour: str
    outcome: str
    decisions: int
    count_x: float | None
    """Centre of the count printed inside the segment; None when the segment is too narrow for it."""


@dataclass(frozen=True)
class _OutcomeBar:
    label: str
    y: float
    segments: tuple[_OutcomeSegment, ...]
    total: int
    total_x: float


@dataclass(frozen=True)
class _OutcomesChart:
    width: float
    height: float
    label_x: float
    bars: tuple[_OutcomeBar, ...]
    legend: tuple[_LegendEntry, ...]


@dataclass(frozen=True)
class _HistogramBar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    outcome: str
    decisions: int
    bin_from: float
    bin_to: float


@dataclass(frozen=True)
class _AxisTick:
    x: float
    value: float


@dataclass(frozen=True)
class _ThresholdLine:
    x: float
    value: float


@dataclass(frozen=True)
class _HistogramPanel:
    decision_type: str
    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    peak: int
    ticks: tuple[_AxisTick, ...]
    bars: tuple[_HistogramBar, ...]
    threshold: _ThresholdLine | None
    axis_label: str
    legend: tuple[_LegendEntry, ...]


@dataclass(frozen=True)
class _OversightBar:
    series: str
    colour: str
    y: float
    width: float
    value: int
    value_x: float


@dataclass(frozen=True)
class _OversightGroup:
    label: str
    label_y: float
    bars: tuple[_OversightBar, ...]


@dataclass(frozen=True)
class _OversightChart:
    width: float
    height: float
    label_x: float
    bar_x: float
    bar_height: float
    groups: tuple[_OversightGroup, ...]
    legend: tuple[_LegendEntry, ...]


def _colours(names: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    spare = iter(_PALETTE * 8)
    for name in names:
        if name not in out:
            out[name] = _OUTCOME_COLOURS.get(name.lower()) or next(spare, "#777777")
    return out


def _legend(colours: Mapping[str, str], x: float, y: float, width: float) -> tuple[tuple[_LegendEntry, ...], float]:
    """Legend entries laid out in rows from (x, y), wrapping at *width*; returns them and the height used."""
    entries, cx, cy = [], x, y
    for name, colour in colours.items():
        item_width = 22 + 7.2 * len(name) + 16
        if cx + item_width > x + width and cx > x:
            cx, cy = x, cy + 20
        entries.append(_LegendEntry(cx, cy, name, colour))
        cx += item_width
    return tuple(entries), (cy - y) + 20


def _outcomes_chart(data: ReportData) -> _OutcomesChart | None:
    """Horizontal stacked bars: one bar per model version, one segment per outcome (None: no decisions)."""
    if not data.outcomes_by_model:
        return None
    counts_by_bar: dict[str, dict[str, int]] = defaultdict(dict)
    for model, version, outcome, count in data.outcomes_by_model:
        counts_by_bar[f"{model} {version}"][outcome] = count
    colours = _colours(o for _m, _v, o, _n in data.outcomes_by_model)
    label_width, bar_max, row_height, top = 220, 470, 30, 16
    biggest = max(sum(counts.values()) for counts in counts_by_bar.values()) or 1
    bars, y = [], top
    for label, counts in counts_by_bar.items():
        segments, x = [], float(label_width)
        for outcome, count in counts.items():
            width = bar_max * count / biggest
            segments.append(
                _OutcomeSegment(
                    x, max(width, 0.5), colours[outcome], outcome, count, x + width / 2 if width > 26 else None
                )
            )
            x += width
        bars.append(_OutcomeBar(label, y, tuple(segments), sum(counts.values()), x + 6))
        y += row_height
    legend, legend_height = _legend(colours, label_width, y + 8, bar_max)
    return _OutcomesChart(label_width + bar_max + 70, y + 8 + legend_height + 8, label_width - 8, tuple(bars), legend)


def _histogram_panel(
    decision_type: str, rows: list[tuple[str, int, int]], threshold: float | None, scored: bool
) -> _HistogramPanel:
    """One decision type: stacked histogram over [0, 1] by outcome, with the threshold line."""
    width, height, left, right, top, bottom = 360, 220, 40, 12, 26, 58
    plot_width, plot_height = width - left - right, height - top - bottom
    stacks: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for outcome, b, n in rows:
        stacks[b].append((outcome, n))
    colours = _colours(o for o, _b, _n in rows)
    peak = max((sum(n for _o, n in stack) for stack in stacks.values()), default=1) or 1
    bin_width = plot_width / _BINS
    bars = []
    for b in sorted(stacks):
        y = float(top + plot_height)
        for outcome, n in stacks[b]:
            bar_height = plot_height * n / peak
            y -= bar_height
            bars.append(
                _HistogramBar(
                    left + b * bin_width + 1,
                    y,
                    bin_width - 2,
                    max(bar_height, 0.5),
                    colours[outcome],
                    outcome,
                    n,
                    b / _BINS,
                    (b + 1) / _BINS,
                )
            )
    line = None
    if threshold is not None and 0.0 <= threshold <= 1.0:
        line = _ThresholdLine(left + threshold * plot_width, threshold)
    legend, _height = _legend(colours, left, top + plot_height + 36, plot_width)
    return _HistogramPanel(
        decision_type=decision_type,
        width=width,
        height=height,
        plot_left=left,
        plot_right=left + plot_width,
        plot_top=top,
        plot_bottom=top + plot_height,
        peak=peak,
        ticks=tuple(_AxisTick(left + tick * plot_width, tick) for tick in (0.0, 0.25, 0.5, 0.75, 1.0)),
        bars=tuple(bars),
        threshold=line,
        axis_label="model score (probability)" if scored else "confidence",
        legend=legend,
    )


def _confidence_panels(data: ReportData) -> list[_HistogramPanel]:
    by_type: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for decision_type, outcome, b, n in data.histogram:
        by_type[decision_type].append((outcome, b, n))
    return [_histogram_panel(t, rows, data.thresholds.get(t), t in data.scored_types) for t, rows in by_type.items()]


def _oversight_chart(data: ReportData) -> _OversightChart | None:
    """Grouped horizontal bars per model version: review required, reviewed, overridden, escalated
    (None: no decision needed or had a review)."""
    rows = [r for r in data.reviews_by_model if r["review_required"] or r["reviewed"]]
    if not rows:
        return None
    label_width, bar_max, bar_height, top = 220, 440, 12, 12
    group_height = bar_height * len(_OVERSIGHT_SERIES) + 14
    biggest = max(max(int(r[s]) for s in _OVERSIGHT_SERIES) for r in rows) or 1
    groups, y = [], top
    for r in rows:
        bars = []
        for i, (series, colour) in enumerate(_OVERSIGHT_SERIES.items()):
            value = int(r[series])
            width = bar_max * value / biggest
            bars.append(
                _OversightBar(
                    series.replace("_", " "),
                    colour,
                    y + i * bar_height,
                    max(width, 0.5),
                    value,
                    label_width + width + 4,
                )
            )
        groups.append(_OversightGroup(f"{r['model']} {r['model_version']}", y + group_height / 2, tuple(bars)))
        y += group_height
    legend, legend_height = _legend(
        {s.replace("_", " "): c for s, c in _OVERSIGHT_SERIES.items()}, label_width, y + 4, bar_max
    )
    return _OversightChart(
        label_width + bar_max + 80,
        y + 4 + legend_height + 6,
        label_width - 8,
        label_width,
        bar_height,
        tuple(groups),
        legend,
    )


# --- rendering ---------------------------------------------------------------------------------
def _display_text(value: Any) -> str:
    """Display text of a database value (None shows as an em dash); the template escapes it."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}" if not math.isnan(value) else "NaN"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _svg_number(value: float) -> str:
    """An SVG coordinate or length, to a tenth of a unit."""
    return f"{value:.1f}"


_TEMPLATES = Environment(
    loader=PackageLoader("otel_decisions.output", "templates"),
    autoescape=True,  # every template is HTML or inline SVG
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_TEMPLATES.filters["display"] = _display_text
_TEMPLATES.filters["svg_number"] = _svg_number


def render_report(data: ReportData) -> str:
    """The complete HTML document for *data* (self-contained: no network needed to open it)."""
    return _TEMPLATES.get_template("report.html.j2").render(
        data=data,
        decisions=int(data.summary["decisions"] or 0),
        whole_history=data.start == _EPOCH and data.end == _FAR_FUTURE,
        outcomes_chart=_outcomes_chart(data),
        confidence_panels=_confidence_panels(data),
        oversight_chart=_oversight_chart(data),
        reviewer_columns=_REVIEWER_COLUMNS,
        reviewer_rows=[[r.get(c) for c in _REVIEWER_COLUMNS] for r in data.reviewers],
        model_columns=_MODEL_COLUMNS,
        model_rows=[
            [("yes" if r.get(c) else "no") if c == "approved_now" else r.get(c) for c in _MODEL_COLUMNS]
            for r in data.models
        ],
        max_adverse_rows=MAX_ADVERSE_ROWS,
        max_flow_run_rows=MAX_FLOW_RUN_ROWS,
        queries=REPORT_QUERIES + ((FLOW_RUN_QUERY,) if data.flow_run_id else ()),
    )


def write_report(
    client: Any,
    path: Path | str,
    *,
    title: str = DEFAULT_TITLE,
    start: datetime | None = None,
    end: datetime | None = None,
    adverse_outcomes: Sequence[str] = DEFAULT_ADVERSE_OUTCOMES,
    database: str | None = None,
    flow_run_id: str | None = None,
) -> Path:
    """Write the HTML evidence report for decisions in [*start*, *end*) (default: all) to *path*;
    for one Prefect flow run's decisions (and the reviews of them) when *flow_run_id* is given.

    *database* labels the source in the header (default: the client's database name; pass a
    redacted DSN to show where the data came from). Returns the path written.
    """
    data = collect_report_data(
        client,
        title=title,
        start=start,
        end=end,
        adverse_outcomes=adverse_outcomes,
        database=database,
        flow_run_id=flow_run_id,
    )
    return save_report(data, path)


def save_report(data: ReportData, path: Path | str) -> Path:
    """Render *data* and write it to *path* (its directory made if need be). Returns the path written."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_report(data), encoding="utf-8")
    except OSError as exc:
        raise OtelDecisionsError(
            f"report: cannot write {target}: {exc.strerror or exc}; choose a writable path"
        ) from exc
    return target
