"""The HTML evidence report: built from the example flows' real data in chDB, opened in headless Chromium.

A subprocess (fresh chDB directory, fresh Prefect home: chDB allows one engine per process) runs
the three examples at a small size with the ClickHouse exporter, writes the report for that
database and for an empty one, and prints what the database holds. The tests then check the
HTML against those numbers, that it is self-contained and escaped, and (``browser``) that
Debian's headless ``chromium`` renders its charts and tables: a screenshot with the chart colours
in it, and a DOM dump with the SVG bars and table rows. A decision stored with markup in every text
field (in this process's chDB) must come out of the report as text, never as markup.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link

from otel_decisions import semconv
from otel_decisions.catalogue import load_catalogue
from otel_decisions.output import report
from otel_decisions.output.report import MAX_ADVERSE_ROWS, ReportData, render_report, write_report
from otel_decisions.store.client import get_client
from otel_decisions.store.exporter import ClickHouseSpanExporter
from tests.browser import CHROMIUM, CHROMIUM_FLAGS, decode_png, require_chromium
from tests.seed import fresh_chdb_dsn

REPO = Path(__file__).resolve().parent.parent

_BUILD_SCRIPT = r"""
import json, sys, time
from datetime import datetime, timedelta, timezone
from pathlib import Path

out = Path(sys.argv[1])
import otel_decisions
from otel_decisions.store.approvals import approve_model
from otel_decisions.store.client import get_client
from otel_decisions.store.schema import apply_migrations
from otel_decisions.output.report import write_report

dsn = f"chdb://{out / 'chdb'}"
otel_decisions.configure(exporters=["clickhouse"], dsn=dsn, data_dir=str(out / "data"), durable=False,
                         hmac_key="report-test-hmac-key-0123456789", service_name="report-test")
otel_decisions.PrefectInstrumentor().instrument()
client = get_client(dsn, role="admin")
apply_migrations(client)
import examples
for name, version in examples.APPROVED_MODELS:
    approve_model(client, name, version, approved_by="model-risk",
                  approved_from=datetime.now(timezone.utc) - timedelta(days=30))
started = time.monotonic()
counts = examples.run_all(credit=150, clinical=80, fraud=10, seed=7)
examples_s = time.monotonic() - started
otel_decisions.force_flush()

q = lambda sql: client.query(sql).result_rows
facts = {
    "counts": counts,
    "examples_seconds": examples_s,
    "decisions": q("SELECT count() FROM decisions FINAL")[0][0],
    "adverse": q("SELECT count() FROM decisions FINAL WHERE outcome IN ('deny', 'decline')")[0][0],
    "reviews": q("SELECT count() FROM decision_reviews FINAL")[0][0],
    "overrides": q("SELECT count() FROM decision_reviews FINAL WHERE action = 'override'")[0][0],
    "model_versions": [f"{m} {v}" for m, v in q("SELECT DISTINCT model_name, model_version FROM decisions FINAL")],
    "decision_types": [t for (t,) in q("SELECT DISTINCT decision_type FROM decisions FINAL")],
    "reviewers": q("SELECT uniqExact(reviewer_id) FROM decision_reviews FINAL")[0][0],
}
started = time.monotonic()
write_report(client, out / "report.html", title="Evidence <report> & test", database=dsn)
facts["report_seconds"] = time.monotonic() - started

empty = get_client(dsn + "?database=otel_empty_db", role="admin")
apply_migrations(empty)
write_report(empty, out / "empty.html")
print("FACTS " + json.dumps(facts))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run the examples into a fresh chDB and write the reports (in a subprocess)."""
    out = tmp_path_factory.mktemp("report")
    env = {
        **os.environ,
        "PREFECT_HOME": str(out / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run([sys.executable, "-c", _BUILD_SCRIPT, str(out)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("FACTS ")), None)
    assert proc.returncode == 0 and line, f"report build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    facts = json.loads(line.removeprefix("FACTS "))
    return {"dir": out, "facts": facts, "html": (out / "report.html").read_text(encoding="utf-8"),
            "empty": (out / "empty.html").read_text(encoding="utf-8")}


class _Sections(HTMLParser):
    """Counts tags (and classes) inside each element carrying a data-testid; collects their text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str | None]] = []
        self.tags: dict[str, Counter] = defaultdict(Counter)
        self.text: dict[str, list[str]] = defaultdict(list)
        self.attrs: dict[str, list[dict[str, str | None]]] = defaultdict(list)

    def _open(self) -> list[str]:
        return [tid for _tag, tid in self.stack if tid]

    def _record(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for tid in self._open():
            self.tags[tid][tag] += 1
            for cls in (values.get("class") or "").split():
                self.tags[tid][f"{tag}.{cls}"] += 1
            self.attrs[tid].append({"tag": tag, **values})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)
        if tag not in ("meta", "link", "br", "img", "input", "hr"):
            self.stack.append((tag, dict(attrs).get("data-testid")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        for tid in self._open():
            self.text[tid].append(data)


def parse(markup: str) -> _Sections:
    parser = _Sections()
    parser.feed(markup)
    parser.close()
    return parser


def _adverse_rows(sections: _Sections) -> int:
    return sections.tags["table-adverse"]["tr"] - 1  # minus the header row


def check_rendered_report(sections: _Sections, facts: dict) -> None:
    """What must be in the report (static HTML or Chromium's DOM) for the examples' data."""
    for testid in ("summary", "chart-outcomes", "chart-confidence", "chart-reviews", "table-adverse",
                   "table-models", "table-reviewers"):
        assert testid in sections.tags, f"{testid} missing"
    # one bar segment per (model version, outcome), one histogram panel per decision type
    assert sections.tags["chart-outcomes"]["rect.bar"] >= len(facts["model_versions"]) * 2 - 1
    assert sections.tags["chart-confidence"]["svg"] == len(facts["decision_types"])
    thresholds = [a for a in sections.attrs["chart-confidence"] if "threshold" in (a.get("class") or "")]
    assert thresholds and all(a["data-threshold"] == "0.5" for a in thresholds)
    assert sections.tags["chart-reviews"]["rect.bar"] >= 8
    outcome_text = " ".join(sections.text["chart-outcomes"])
    for label in facts["model_versions"]:
        assert label in outcome_text
    assert _adverse_rows(sections) == min(facts["adverse"], MAX_ADVERSE_ROWS) > 0
    assert sections.tags["table-reviewers"]["tr"] - 1 == facts["reviewers"]
    assert sections.tags["table-models"]["tr"] - 1 == len(facts["model_versions"])
    summary = " ".join(" ".join(sections.text["count-decisions"]).split())
    assert summary.startswith(str(facts["decisions"]))
    assert " ".join(sections.text["count-overrides"]).split()[0] == str(facts["overrides"])


# --- static HTML ---------------------------------------------------------------------------------
def test_report_matches_the_database(built):
    facts = built["facts"]
    assert facts["decisions"] == sum(c["decisions"] for c in facts["counts"].values())
    assert facts["overrides"] == sum(c["overrides"] for c in facts["counts"].values() if "overrides" in c) > 0
    check_rendered_report(parse(built["html"]), facts)
    adverse = parse(built["html"]).text["table-adverse"]
    assert any("Excessive obligations" in t or "Delinquent" in t or "insufficient" in t for t in adverse)


def test_report_is_self_contained(built):
    page = built["html"]
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for forbidden in ("<script", "http://", "https://", "<link", "@import", "url(", "src=", "<iframe"):
        assert forbidden not in lowered, forbidden
    assert "<svg" in page and "<style>" in page
    # the title passed in is escaped, never markup
    assert "Evidence &lt;report&gt; &amp; test" in page and "<report>" not in page


def test_report_of_an_empty_database(built):
    sections = parse(built["empty"])
    assert "chart-outcomes-empty" in sections.tags and "chart-confidence-empty" in sections.tags
    assert "chart-reviews-empty" in sections.tags
    assert sections.tags["table-adverse"]["tr.empty"] == 1
    assert " ".join(sections.text["count-decisions"]).split()[0] == "0"


def test_report_escapes_every_database_value():
    evil = '<script>alert("x")</script>'
    data = ReportData(
        title=evil, generated_at=datetime(2026, 1, 1), database=evil, start=datetime(1970, 1, 1),
        end=datetime(2100, 1, 1),
        summary={"decisions": 1, "adverse": 1, "review_required": 1, "reviews": 1, "overrides": 1,
                 "decision_types": 1, "model_versions": 1, "first_decision": datetime(2026, 1, 1),
                 "last_decision": datetime(2026, 1, 1)},
        outcomes_by_model=[(evil, evil, evil, 1)], histogram=[(evil, evil, 3, 1)], thresholds={evil: 0.5},
        scored_types={evil},
        reviews_by_model=[{"model": evil, "model_version": evil, "decisions": 1, "review_required": 1,
                           "reviewed": 1, "overridden": 1, "escalated": 0}],
        reviewers=[{"reviewer_id": evil, "reviews": 1, "overrides": 1, "override_rate": 1.0,
                    "median_seconds_to_review": 1.0}],
        models=[{"model_name": evil, "model_version": evil, "decisions": 1, "approved_now": 0}],
        adverse_columns=["decision_id", evil], adverse_rows=[(evil, [evil, "a&b"])], adverse_total=1,
    )
    page = render_report(data)
    assert "<script" not in page.lower()
    assert page.count("&lt;script&gt;") >= 10
    assert "a&amp;b" in page


HOSTILE = "<script>alert(1)</script>&\"'"


def _store_hostile_decision(client) -> None:
    """One adverse, reviewed decision whose every free-text field is HOSTILE, written through the exporter."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(semconv.INSTRUMENTATION_SCOPE)
    decision = tracer.start_span(semconv.DECISION_SPAN_PREFIX + HOSTILE, attributes={
        semconv.DECISION_ID: "hostile-decision", semconv.DECISION_TYPE: HOSTILE, semconv.DECISION_OUTCOME: "deny",
        semconv.DECISION_SCORE: 0.3, semconv.DECISION_THRESHOLD: 0.5, semconv.DECISION_REVIEW_REQUIRED: True,
        semconv.DECISION_RATIONALE: HOSTILE, semconv.DECISION_REASONS: [HOSTILE, "second reason"],
        semconv.DECISION_SUBJECT_ID: HOSTILE, semconv.DECISION_MODEL_NAME: HOSTILE,
        semconv.DECISION_MODEL_VERSION: HOSTILE, semconv.DECISION_POLICY_VERSION: HOSTILE,
    })
    decision.end()
    review = tracer.start_span(semconv.REVIEW_SPAN_NAME, links=[Link(decision.get_span_context())], attributes={
        semconv.DECISION_ID: "hostile-decision", semconv.DECISION_REVIEW_ID: "hostile-review",
        semconv.DECISION_REVIEW_REVIEWER_ID: HOSTILE, semconv.DECISION_REVIEW_ACTION: "override",
        semconv.DECISION_REVIEW_REASON: HOSTILE, semconv.DECISION_REVIEW_ORIGINAL_OUTCOME: "deny",
        semconv.DECISION_REVIEW_NEW_OUTCOME: "approve",
    })
    review.end()
    provider.shutdown()
    assert ClickHouseSpanExporter(client=client).export(memory.get_finished_spans()) is SpanExportResult.SUCCESS


def test_a_hostile_value_in_the_store_is_text_in_the_report(tmp_path):
    client = get_client(fresh_chdb_dsn("report"), role="admin")
    try:
        _store_hostile_decision(client)
        page = write_report(client, tmp_path / "hostile.html").read_text(encoding="utf-8")
    finally:
        client.close()
    assert HOSTILE not in page and "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;" in page
    sections = parse(page)
    # decoded back, the value is the text of every chart and table that shows it ...
    for testid in ("chart-outcomes", "chart-confidence", "chart-reviews", "table-reviewers", "table-models",
                   "table-adverse"):
        assert HOSTILE in "".join(sections.text[testid]), testid
    # ... and its quotes stay inside the attribute they are in
    labels = [a["aria-label"] for a in sections.attrs["chart-confidence"] if a["tag"] == "svg"]
    assert labels == [f"{HOSTILE} distribution"]


def test_the_report_sends_no_sql_of_its_own():
    """House rule: SQL lives in queries/. The report runs catalogue queries by name, and only those it names."""
    source = Path(report.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    sql_keyword = re.compile(r"\b(SELECT|INSERT|FROM|WHERE|GROUP BY|JOIN)\b")
    assert not [n.value for n in ast.walk(tree)
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and sql_keyword.search(n.value)]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert not {c.func.attr for c in calls if isinstance(c.func, ast.Attribute)} & {"query", "command", "raw_query"}
    run = {c.args[1].value if isinstance(c.args[1], ast.Constant) else getattr(report, c.args[1].id)
           for c in calls if isinstance(c.func, ast.Name) and c.func.id == "run_query"}
    assert run == {*report.REPORT_QUERIES, report.FLOW_RUN_QUERY} and run <= set(load_catalogue())


def test_the_templates_never_switch_escaping_off():
    for template in (Path(report.__file__).parent / "templates").iterdir():
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"\|\s*safe\b|autoescape\s+false|Markup", text), template.name


# --- headless Chromium ---------------------------------------------------------------------------
def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


def _near(pixel: tuple[int, int, int], colour: str, tolerance: int = 12) -> bool:
    target = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, target))


@pytest.mark.browser
def test_report_renders_in_headless_chromium(built, tmp_path):
    require_chromium()
    url = (built["dir"] / "report.html").resolve().as_uri()

    dom = _chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    check_rendered_report(parse(dom.stdout), built["facts"])

    shot = tmp_path / "report.png"
    result = _chromium([f"--screenshot={shot}", "--window-size=1280,2000", url], tmp_path / "profile-shot")
    assert result.returncode == 0 and shot.exists(), result.stderr[-3000:]
    width, height, rows = decode_png(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    pixels = Counter()
    for row in rows[::2]:
        for x in range(0, width * 3, 6):
            pixels[(row[x], row[x + 1], row[x + 2])] += 1
    total = sum(pixels.values())
    not_white = total - sum(n for p, n in pixels.items() if min(p) >= 245)
    assert not_white / total > 0.05, "the page looks blank"
    assert len(pixels) > 50, "too few colours for a page with charts"
    # The charts' fills are on screen: approve green, deny red (credit), routine blue (triage),
    # and the header's navy.
    for colour in ("#2e7d32", "#c62828", "#1e88e5", "#17324d"):
        assert sum(n for p, n in pixels.items() if _near(p, colour)) > 20, f"no {colour} pixels rendered"
