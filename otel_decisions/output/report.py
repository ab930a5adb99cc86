"""The HTML evidence report: one self-contained file an examiner can open offline.

:func:`write_report` reads the decision tables (through the query catalogue where a catalogue
query answers the question, and a few parameterised aggregates kept here where a chart needs
one the catalogue lacks) and writes a single HTML file: inline CSS, inline SVG charts, no
scripts, fonts or external URLs. Every value from the database is HTML-escaped.

Sections (each with a stable ``id`` and ``data-testid``):

- ``summary``: generation time, database, period, counts;
- ``chart-outcomes``: decisions by outcome and model version;
- ``chart-confidence``: score / confidence distribution per decision type with the threshold in force;
- ``chart-reviews``: review-required, reviewed, overridden and escalated decisions per model version;
- ``table-reviewers``: reviews and overrides per (pseudonymised) reviewer;
- ``table-models``: model inventory with the approval status;
- ``table-adverse``: adverse decisions with their ranked principal reasons.

Example::

    from otel_decisions.store.client import get_client
    from otel_decisions.output.report import write_report
    write_report(get_client("chdb:///tmp/decisions"), Path("evidence.html"), title="Q1 credit decisions")
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otel_decisions.errors import OtelDecisionsError
from otel_decisions.store.errors import store_error

__all__ = ["ReportData", "collect_report_data", "render_report", "write_report"]

DEFAULT_TITLE = "Decision evidence report"
DEFAULT_ADVERSE_OUTCOMES: tuple[str, ...] = ("deny", "decline")
MAX_ADVERSE_ROWS = 500
"""The adverse-decision table shows at most this many rows (the total is stated)."""
_EPOCH = datetime(1970, 1, 1)
_FAR_FUTURE = datetime(2100, 1, 1)
_BINS = 20

# Aggregates the catalogue has no query for. Parameters are bound by ClickHouse, never interpolated.
_OUTCOMES_BY_MODEL_SQL = """
SELECT
    if(model_name = '', '(no model)', model_name) AS model,
    model_version,
    outcome,
    count() AS decisions
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
GROUP BY model, model_version, outcome
ORDER BY model, model_version, outcome
"""

_SCORE_HISTOGRAM_SQL = """
SELECT
    decision_type,
    outcome,
    least(toUInt32(floor(ifNull(score, confidence) * {bins:UInt32})), {bins:UInt32} - 1) AS bin,
    count() AS decisions
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
  AND ifNull(score, confidence) IS NOT NULL
  AND ifNull(score, confidence) BETWEEN 0 AND 1
GROUP BY decision_type, outcome, bin
ORDER BY decision_type, outcome, bin
"""

_THRESHOLDS_SQL = """
SELECT
    decision_type,
    countIf(score IS NOT NULL) > 0 AS has_score,
    topKIf(1)(threshold, threshold IS NOT NULL) AS thresholds
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
GROUP BY decision_type
ORDER BY decision_type
"""

_REVIEWS_BY_MODEL_SQL = """
SELECT
    if(d.model_name = '', '(no model)', d.model_name) AS model,
    d.model_version AS model_version,
    count() AS decisions,
    countIf(d.review_required) AS review_required,
    countIf(r.decision_id != '') AS reviewed,
    countIf(r.overridden = 1) AS overridden,
    countIf(r.escalated = 1) AS escalated
FROM
(
    SELECT decision_id, model_name, model_version, review_required
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
) AS d
LEFT JOIN
(
    SELECT decision_id, max(action = 'override') AS overridden, max(action = 'escalate') AS escalated
    FROM decision_reviews FINAL
    GROUP BY decision_id
) AS r ON r.decision_id = d.decision_id
GROUP BY model, model_version
ORDER BY model, model_version
"""

_SUMMARY_SQL = """
SELECT
    count() AS decisions,
    uniqExact(decision_type) AS decision_types,
    uniqExact(model_name, model_version) AS model_versions,
    countIf(has({adverse:Array(String)}, outcome)) AS adverse,
    countIf(review_required) AS review_required,
    min(timestamp) AS first_decision,
    max(timestamp) AS last_decision
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
"""

_REVIEW_SUMMARY_SQL = """
SELECT count() AS reviews, countIf(action = 'override') AS overrides
FROM decision_reviews FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
"""

# Outcome colours: favourable greens/blues, adverse reds, human paths amber/purple; others cycle.
_OUTCOME_COLOURS = {
    "approve": "#2e7d32", "approved": "#2e7d32", "legit": "#43a047", "routine": "#1e88e5", "release": "#43a047",
    "deny": "#c62828", "decline": "#c62828", "fraud": "#d84315", "reject": "#c62828", "hold": "#d84315",
    "refer": "#f9a825", "review": "#f9a825", "escalate": "#8e24aa", "urgent": "#6a1b9a",
}
_PALETTE = ("#00897b", "#5e35b1", "#fb8c00", "#3949ab", "#7cb342", "#d81b60", "#546e7a", "#00acc1")
_SERIES = {"review_required": "#f9a825", "reviewed": "#1e88e5", "overridden": "#c62828", "escalated": "#8e24aa"}


@dataclass
class ReportData:
    """Everything the report shows, already fetched from the database."""

    title: str
    generated_at: datetime
    database: str
    start: datetime
    end: datetime
    summary: dict[str, Any]
    outcomes_by_model: list[tuple[str, str, str, int]]
    histogram: list[tuple[str, str, int, int]]
    thresholds: dict[str, float | None]
    scored_types: set[str]
    reviews_by_model: list[dict[str, Any]]
    reviewers: list[dict[str, Any]]
    models: list[dict[str, Any]]
    adverse_columns: list[str]
    adverse_rows: list[tuple[Any, ...]]
    adverse_total: int
    adverse_outcomes: tuple[str, ...] = DEFAULT_ADVERSE_OUTCOMES


def _naive_utc(moment: datetime | None, default: datetime) -> datetime:
    if moment is None:
        return default
    if moment.tzinfo is not None:
        return moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def _query(client: Any, sql: str, params: Mapping[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    try:
        result = client.query(sql, parameters=dict(params))
    except Exception as exc:
        raise store_error(exc, "report") from exc
    return list(result.column_names), [tuple(row) for row in result.result_rows]


def collect_report_data(
    client: Any,
    *,
    title: str = DEFAULT_TITLE,
    start: datetime | None = None,
    end: datetime | None = None,
    adverse_outcomes: Sequence[str] = DEFAULT_ADVERSE_OUTCOMES,
    database: str | None = None,
) -> ReportData:
    """Fetch what the report needs from *client* (a clickhouse-connect client)."""
    from otel_decisions.store.client import database_of
    from otel_decisions.catalogue import run_query

    period = {"start": _naive_utc(start, _EPOCH), "end": _naive_utc(end, _FAR_FUTURE)}
    adverse = tuple(adverse_outcomes)
    cols, rows = _query(client, _SUMMARY_SQL, {**period, "adverse": list(adverse)})
    summary = dict(zip(cols, rows[0])) if rows else {}
    cols, rows = _query(client, _REVIEW_SUMMARY_SQL, period)
    summary.update(dict(zip(cols, rows[0])) if rows else {"reviews": 0, "overrides": 0})

    _, outcomes = _query(client, _OUTCOMES_BY_MODEL_SQL, period)
    _, histogram = _query(client, _SCORE_HISTOGRAM_SQL, {**period, "bins": _BINS})
    _, threshold_rows = _query(client, _THRESHOLDS_SQL, period)
    thresholds = {str(t): (float(ths[0]) if ths else None) for t, _scored, ths in threshold_rows}
    scored = {str(t) for t, has_score, _ths in threshold_rows if has_score}
    cols, rows = _query(client, _REVIEWS_BY_MODEL_SQL, period)
    reviews_by_model = [dict(zip(cols, row)) for row in rows]

    reviewers = run_query(client, "override_rate_by_reviewer", period).as_dicts()
    models = run_query(client, "model_inventory", period).as_dicts()
    adverse_result = run_query(client, "adverse_action_reasons", {**period, "adverse_outcomes": list(adverse)})
    return ReportData(
        title=title,
        generated_at=datetime.now(timezone.utc).replace(microsecond=0),
        database=database or database_of(client),
        start=period["start"],
        end=period["end"],
        summary=summary,
        outcomes_by_model=[(str(m), str(v), str(o), int(n)) for m, v, o, n in outcomes],
        histogram=[(str(t), str(o), int(b), int(n)) for t, o, b, n in histogram],
        thresholds=thresholds,
        scored_types=scored,
        reviews_by_model=reviews_by_model,
        reviewers=reviewers,
        models=models,
        adverse_columns=adverse_result.columns,
        adverse_rows=adverse_result.rows[:MAX_ADVERSE_ROWS],
        adverse_total=len(adverse_result.rows),
        adverse_outcomes=adverse,
    )


# --- rendering helpers -------------------------------------------------------------------------
def _text(value: Any) -> str:
    """Display text of a database value (None shows as an em dash); not yet escaped."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}" if not math.isnan(value) else "NaN"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _e(value: Any) -> str:
    """Escaped display text of a database value: everything from the database goes through here."""
    return html.escape(_text(value))


def _colours(names: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    spare = iter(_PALETTE * 8)
    for name in names:
        if name not in out:
            out[name] = _OUTCOME_COLOURS.get(name.lower()) or next(spare, "#777777")
    return out


def _legend(colours: Mapping[str, str], x: float, y: float, width: float) -> tuple[str, float]:
    """SVG legend items laid out in rows from (x, y); returns the markup and the height used."""
    parts, cx, cy = [], x, y
    for name, colour in colours.items():
        item_width = 22 + 7.2 * len(name) + 16
        if cx + item_width > x + width and cx > x:
            cx, cy = x, cy + 20
        parts.append(f'<rect x="{cx:.1f}" y="{cy:.1f}" width="14" height="14" rx="2" fill="{colour}"/>'
                     f'<text x="{cx + 20:.1f}" y="{cy + 11.5:.1f}" class="lbl">{_e(name)}</text>')
        cx += item_width
    return "".join(parts), (cy - y) + 20


def _empty_svg(testid: str, message: str) -> str:
    return (f'<svg class="chart" role="img" data-testid="{testid}-empty" viewBox="0 0 760 60" width="760" height="60">'
            f'<text x="12" y="36" class="lbl">{_e(message)}</text></svg>')


def _outcomes_chart(data: ReportData) -> str:
    """Horizontal stacked bars: one bar per model version, one segment per outcome."""
    if not data.outcomes_by_model:
        return _empty_svg("chart-outcomes", "No decisions in the period.")
    bars: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for model, version, outcome, count in data.outcomes_by_model:
        bars[(model, version)][outcome] = count
    colours = _colours(o for _m, _v, o, _n in data.outcomes_by_model)
    label_w, bar_max, row_h, top = 220, 470, 30, 16
    width = label_w + bar_max + 70
    biggest = max(sum(v.values()) for v in bars.values()) or 1
    parts = []
    y = top
    for (model, version), counts in bars.items():
        total = sum(counts.values())
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" class="lbl">'
                     f'{_e(model)} {_e(version)}</text>')
        x = float(label_w)
        for outcome, count in counts.items():
            w = bar_max * count / biggest
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="20" '
                         f'fill="{colours[outcome]}"><title>{_e(model)} {_e(version)} · {_e(outcome)}: {count}</title></rect>')
            if w > 26:
                parts.append(f'<text x="{x + w / 2:.1f}" y="{y + 14.5}" text-anchor="middle" class="val">{count}</text>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}" class="lbl">{total}</text>')
        y += row_h
    legend, legend_h = _legend(colours, label_w, y + 8, bar_max)
    height = y + 8 + legend_h + 8
    return (f'<svg class="chart" role="img" aria-label="Decisions by outcome and model version" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">{"".join(parts)}{legend}</svg>')


def _histogram_panel(dtype: str, rows: list[tuple[str, int, int]], threshold: float | None, scored: bool) -> str:
    """One decision type: stacked histogram over [0, 1] by outcome, with the threshold line."""
    width, height, left, right, top, bottom = 360, 220, 40, 12, 26, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    stacks: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for outcome, b, n in rows:
        stacks[b].append((outcome, n))
    colours = _colours(o for o, _b, _n in rows)
    peak = max((sum(n for _o, n in s) for s in stacks.values()), default=1) or 1
    bin_w = plot_w / _BINS
    parts = [f'<text x="{left}" y="16" class="ttl">{_e(dtype)}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>',
             f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" class="tick">{peak}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="tick">0</text>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        tx = left + tick * plot_w
        parts.append(f'<text x="{tx:.1f}" y="{top + plot_h + 14}" text-anchor="middle" class="tick">{tick:g}</text>')
    for b in sorted(stacks):
        y = float(top + plot_h)
        for outcome, n in stacks[b]:
            h = plot_h * n / peak
            y -= h
            parts.append(f'<rect class="bar" x="{left + b * bin_w + 1:.1f}" y="{y:.1f}" width="{bin_w - 2:.1f}" '
                         f'height="{max(h, 0.5):.1f}" fill="{colours[outcome]}"><title>{_e(outcome)}: {n} in '
                         f'[{b / _BINS:.2f}, {(b + 1) / _BINS:.2f})</title></rect>')
    if threshold is not None and 0.0 <= threshold <= 1.0:
        tx = left + threshold * plot_w
        parts.append(f'<line class="threshold" data-threshold="{threshold:g}" x1="{tx:.1f}" y1="{top - 4}" '
                     f'x2="{tx:.1f}" y2="{top + plot_h}"/>'
                     f'<text x="{tx + 4:.1f}" y="{top + 6}" class="thr">threshold {threshold:g}</text>')
    axis = "model score (probability)" if scored else "confidence"
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h + 28}" text-anchor="middle" class="tick">'
                 f'{axis}</text>')
    legend, _h = _legend(colours, left, top + plot_h + 36, plot_w)
    return (f'<svg class="chart panel" role="img" aria-label="{_e(dtype)} distribution" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">{"".join(parts)}{legend}</svg>')


def _confidence_chart(data: ReportData) -> str:
    if not data.histogram:
        return _empty_svg("chart-confidence", "No decisions with a score or confidence in the period.")
    by_type: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for dtype, outcome, b, n in data.histogram:
        by_type[dtype].append((outcome, b, n))
    return "".join(_histogram_panel(t, rows, data.thresholds.get(t), t in data.scored_types)
                   for t, rows in by_type.items())


def _reviews_chart(data: ReportData) -> str:
    """Grouped horizontal bars per model version: review required, reviewed, overridden, escalated."""
    rows = [r for r in data.reviews_by_model if r["review_required"] or r["reviewed"]]
    if not rows:
        return _empty_svg("chart-reviews", "No decisions required or received a human review in the period.")
    series = list(_SERIES)
    label_w, bar_max, bar_h, top = 220, 440, 12, 12
    group_h = bar_h * len(series) + 14
    width = label_w + bar_max + 80
    biggest = max(max(int(r[s]) for s in series) for r in rows) or 1
    parts, y = [], top
    for r in rows:
        parts.append(f'<text x="{label_w - 8}" y="{y + group_h / 2:.1f}" text-anchor="end" class="lbl">'
                     f'{_e(r["model"])} {_e(r["model_version"])}</text>')
        for i, s in enumerate(series):
            value = int(r[s])
            w = bar_max * value / biggest
            by = y + i * bar_h
            parts.append(f'<rect class="bar" x="{label_w}" y="{by}" width="{max(w, 0.5):.1f}" height="{bar_h - 2}" '
                         f'fill="{_SERIES[s]}"><title>{_e(r["model"])} {_e(r["model_version"])} · '
                         f'{s.replace("_", " ")}: {value}</title></rect>'
                         f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 3}" class="tick">{value}</text>')
        y += group_h
    legend, legend_h = _legend({s.replace("_", " "): c for s, c in _SERIES.items()}, label_w, y + 4, bar_max)
    height = y + 4 + legend_h + 6
    return (f'<svg class="chart" role="img" aria-label="Reviews and overrides by model version" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">{"".join(parts)}{legend}</svg>')


def _table(testid: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str) -> str:
    rows = list(rows)
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    if not rows:
        body = f'<tr class="empty"><td colspan="{len(columns)}">{_e(empty)}</td></tr>'
    else:
        body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (f'<table id="{testid}" data-testid="{testid}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def _section(testid: str, heading: str, intro: str, content: str) -> str:
    return (f'<section id="{testid}" data-testid="{testid}"><h2>{_e(heading)}</h2>'
            f'<p class="intro">{_e(intro)}</p>{content}</section>')


_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
header{background:#17324d;color:#fff;padding:22px 32px}
header h1{margin:0 0 6px;font-size:24px}
header p{margin:2px 0;color:#c9d6e3;font-size:13px}
main{padding:8px 32px 40px;max-width:1240px}
section{background:#fff;border:1px solid #d9e0e7;border-radius:6px;padding:16px 20px;margin:18px 0}
h2{font-size:17px;margin:0 0 4px}
p.intro{margin:0 0 12px;color:#526273;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 130px;border:1px solid #d9e0e7;border-radius:6px;padding:10px 12px;background:#fafbfc}
.card .n{font-size:24px;font-weight:600}
.card .k{font-size:12px;color:#526273}
svg.chart{display:block;max-width:100%;height:auto;margin:4px 0}
svg.panel{display:inline-block;margin-right:12px}
svg text{font-family:inherit}
.lbl{font-size:12px;fill:#1d2733}
.val{font-size:11px;fill:#fff;font-weight:600}
.tick{font-size:10px;fill:#526273}
.ttl{font-size:13px;font-weight:600;fill:#1d2733}
.thr{font-size:10px;fill:#b71c1c;font-weight:600}
.axis{stroke:#8a99a8;stroke-width:1}
.threshold{stroke:#b71c1c;stroke-width:2;stroke-dasharray:5 3}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{border-bottom:1px solid #e3e8ed;padding:5px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#eef2f6;position:sticky;top:0}
tr.empty td{color:#526273;font-style:italic}
.scroll{max-height:720px;overflow:auto;border:1px solid #e3e8ed}
footer{color:#526273;font-size:12px;padding:0 32px 24px}
"""


def render_report(data: ReportData) -> str:
    """The complete HTML document for *data* (self-contained: no network needed to open it)."""
    s = data.summary
    period = ("all recorded decisions" if data.start == _EPOCH and data.end == _FAR_FUTURE
              else f"{data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC")
    decisions = int(s.get("decisions") or 0)
    cards = [
        ("decisions", decisions), ("adverse (" + ", ".join(data.adverse_outcomes) + ")", s.get("adverse", 0)),
        ("review required", s.get("review_required", 0)), ("human reviews", s.get("reviews", 0)),
        ("overrides", s.get("overrides", 0)), ("decision types", s.get("decision_types", 0)),
        ("model versions", s.get("model_versions", 0)),
    ]
    card_html = "".join(f'<div class="card" data-testid="count-{_e(k.split(" (")[0].replace(" ", "-"))}">'
                        f'<div class="n">{_e(v)}</div><div class="k">{_e(k)}</div></div>' for k, v in cards)
    span = ""
    if decisions:
        span = f" First decision {_text(s.get('first_decision'))} UTC, last {_text(s.get('last_decision'))} UTC."
    summary = _section("summary", "Summary", f"Period: {period}.{span}", f'<div class="cards">{card_html}</div>')

    reviewer_cols = ["reviewer_id", "reviews", "overrides", "override_rate", "median_seconds_to_review"]
    reviewer_rows = [[r.get(c) for c in reviewer_cols] for r in data.reviewers]
    model_cols = ["model_name", "model_version", "decisions", "first_used", "last_used", "mean_confidence",
                  "automated_share", "approved_now"]
    model_rows = [[("yes" if r.get(c) else "no") if c == "approved_now" else r.get(c) for c in model_cols]
                  for r in data.models]
    adverse_note = (f"{data.adverse_total} adverse decisions"
                    + (f"; the first {MAX_ADVERSE_ROWS} are shown" if data.adverse_total > MAX_ADVERSE_ROWS else "")
                    + ". Subject ids are HMAC pseudonyms; reasons are the ranked principal reasons recorded "
                      "at decision time (Reg B 12 CFR 1002.9).")
    body = "".join([
        summary,
        _section("chart-outcomes", "Decisions by outcome and model version",
                 "Each bar is one model version; segments are outcomes.",
                 _outcomes_chart(data)),
        _section("chart-confidence", "Confidence distribution and the threshold in force",
                 "Per decision type: the recorded model score (the confidence where no score is recorded), "
                 "stacked by outcome; the dashed line is the threshold most often in force.",
                 _confidence_chart(data)),
        _section("chart-reviews", "Human reviews and overrides",
                 "Per model version: decisions flagged for human review, decisions reviewed, overridden by the "
                 "reviewer, and escalated (EU AI Act Art. 14).",
                 _reviews_chart(data)),
        _section("reviewers", "Reviews per reviewer",
                 "Pseudonymised reviewers; a reviewer who never overrides may be rubber-stamping.",
                 _table("table-reviewers", reviewer_cols, reviewer_rows, "No reviews in the period.")),
        _section("models", "Model inventory", "Model versions that made decisions, and whether an approval covers "
                 "them now.", _table("table-models", model_cols, model_rows, "No model recorded.")),
        _section("adverse", "Adverse decisions with their principal reasons", adverse_note,
                 '<div class="scroll">' + _table("table-adverse", data.adverse_columns, data.adverse_rows,
                                                 "No adverse decisions in the period.") + "</div>"),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(data.title)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<header data-testid=\"report-header\"><h1>{_e(data.title)}</h1>"
        f"<p>Generated {_e(data.generated_at.strftime('%Y-%m-%d %H:%M:%S'))} UTC by otel-decisions · "
        f"database <code>{_e(data.database)}</code> · {decisions} decisions</p></header>"
        f"<main>{body}</main>"
        "<footer>Self-contained evidence file: no scripts, fonts or network resources. Data: the "
        "<code>decisions</code>, <code>decision_reviews</code> and <code>model_approvals</code> tables; "
        "queries from the otel-decisions catalogue (override_rate_by_reviewer, model_inventory, "
        "adverse_action_reasons).</footer>"
        "</body></html>\n"
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
) -> Path:
    """Write the HTML evidence report for decisions in [*start*, *end*) (default: all) to *path*.

    *database* labels the source in the header (default: the client's database name; pass a
    redacted DSN to show where the data came from). Returns the path written.
    """
    data = collect_report_data(client, title=title, start=start, end=end,
                               adverse_outcomes=adverse_outcomes, database=database)
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_report(data), encoding="utf-8")
    except OSError as exc:
        raise OtelDecisionsError(f"report: cannot write {target}: {exc.strerror or exc}; choose a writable path") from exc
    return target
