"""Human oversight in the real Prefect UI: review forms, decision artifacts and the flow-run report.

A real ``prefect server start`` with its UI, flows started as their own processes (configured by the
otel-decisions plugin, recording into one embedded chDB), a process work pool with ``prefect worker
start`` for the suspended run, and Debian's headless Chromium driven by Playwright (no browser
download). The reviewer opens the flow run in Prefect's UI, reads the decision in the form, answers
it; the tests then read the review from ``decision_reviews``, the artifacts from Prefect's API and
the page, and the report's tables against the catalogue queries.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_decisions.catalogue import run_query
from otel_decisions.store.client import get_client
from tests.browser import decode_png, playwright_page, require_chromium
from tests.production import (
    APPS,
    BIN,
    PrefectServer,
    flow_env,
    run_deployment,
    start_background,
    stop_group,
    store_dsn,
)
from tests.test_report import parse

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REVIEW_APP = APPS / "review_flow.py"
FLOW_NAME = "review-underwriting"
CLEAR_VALUES = ("sam.sample@example.org", "APP-SYN-0042", "analyst-07", "analyst-11")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Any:
    require_chromium()
    work = tmp_path_factory.mktemp("prefect-ui")
    with PrefectServer(work / "server", ui=True) as server:
        env = flow_env(work, server.api_url, plugin=True, PREFECT_WORKER_QUERY_SECONDS="2")
        yield {"server": server, "env": env, "work": work, "dsn": store_dsn(work)}


# --- helpers ---------------------------------------------------------------------------------------
def _api(server: PrefectServer, method: str, path: str, body: Any = None) -> Any:
    response = httpx.request(method, f"{server.api_url}{path}", json=body, timeout=15)
    assert response.status_code < 300, response.text
    return response.json()


def _paused_run(server: PrefectServer, after: set[str], timeout_s: float = 120) -> dict[str, Any]:
    """The new flow run of FLOW_NAME that is PAUSED (waiting for its review form)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = _api(server, "POST", "/flow_runs/filter", {"flows": {"name": {"any_": [FLOW_NAME]}},
                                                           "flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}})
        fresh = [r for r in runs if r["id"] not in after]
        if fresh:
            return dict(fresh[0])
        time.sleep(0.5)
    raise AssertionError(f"no paused {FLOW_NAME} run in {timeout_s} s")


def _run_ids(server: PrefectServer) -> set[str]:
    runs = _api(server, "POST", "/flow_runs/filter", {"flows": {"name": {"any_": [FLOW_NAME]}}})
    return {r["id"] for r in runs}


def _answer_in_ui(page: Any, server: PrefectServer, run_id: str, *, new_outcome: str, reason: str, reviewer: str,
                  screenshot: Path) -> str:
    """Open the paused run in Prefect's UI, check what the form shows, override, submit. Returns the form's text."""
    from playwright.sync_api import expect

    page.goto(f"{server.url}/v2/runs/flow-run/{run_id}")
    page.get_by_role("button", name="Open menu").first.click()
    page.get_by_role("menuitem", name="Resume").click()
    dialog = page.get_by_role("dialog", name="Resume Flow Run")
    expect(dialog).to_contain_text("Human review of an AI decision")
    form_text = dialog.inner_text()
    dialog.get_by_role("button", name=re.compile("Select action", re.I)).click()
    page.get_by_role("option", name="override", exact=True).click()
    dialog.get_by_role("tab", name="str", exact=True).click()
    dialog.get_by_role("tabpanel", name="str").get_by_role("textbox").fill(new_outcome)
    dialog.get_by_label("Reason", exact=True).fill(reason)
    dialog.get_by_label("Reviewer", exact=True).fill(reviewer)
    dialog.screenshot(path=str(screenshot))
    dialog.get_by_role("button", name="Resume", exact=True).click()
    expect(dialog).to_have_count(0, timeout=60_000)  # the resume is a server round trip: slow on a loaded machine
    return form_text


def _check_form(text: str, decision_id: str) -> None:
    """The form shows what the reviewer needs to judge, and no masked value in clear."""
    flat = " ".join(text.split())
    for expected in ("deny", "0.580", "0.420", "0.500", "below the threshold", "credit-risk-lr 3.2.0",
                     "Debt-to-income ratio above 0.40", "Short time at current address", "Limited credit history",
                     decision_id, "annual_income", "48000", "[REDACTED]"):
        assert expected in flat, f"{expected!r} is not in the review form: {flat[:2000]}"
    assert flat.index("Debt-to-income") < flat.index("Short time") < flat.index("Limited credit"), "reasons unranked"
    for clear in CLEAR_VALUES[:2]:
        assert clear not in flat, f"{clear!r} in clear in the review form"


def _check_screenshot(path: Path) -> None:
    width, height, rows = decode_png(path.read_bytes())
    assert width > 300 and height > 300, (width, height)
    pixels = Counter()
    for row in rows[::3]:
        for x in range(0, width * 3, 9):
            pixels[(row[x], row[x + 1], row[x + 2])] += 1
    total = sum(pixels.values())
    background = pixels.most_common(1)[0][1]
    assert background / total < 0.97, "the form screenshot is blank"
    assert len(pixels) > 20, "too few colours for a form with text and fields"


def _store(ui: dict[str, Any]) -> Any:
    return get_client(ui["dsn"], role="reader")


def _wait_rows(ui: dict[str, Any], sql: str, parameters: dict[str, Any], count: int, timeout_s: float = 90) -> list:
    """Rows of *sql* once there are at least *count* (the flow processes flush as they exit)."""
    deadline = time.monotonic() + timeout_s
    while True:
        client = _store(ui)
        try:
            rows = client.query(sql, parameters=parameters).result_rows
        finally:
            client.close()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def _check_review_stored(ui: dict[str, Any], run_id: str, decision_id: str, new_outcome: str, reason: str) -> None:
    reviews = _wait_rows(
        ui,
        "SELECT review_id, action, new_outcome, original_outcome, reviewer_id, reason "
        "FROM decision_reviews FINAL WHERE decision_id = {d:String}",
        {"d": decision_id},
        1,
    )
    assert len(reviews) == 1, reviews
    review_id, action, stored_new, original, reviewer_id, stored_reason = reviews[0]
    assert (action, stored_new, original, stored_reason) == ("override", new_outcome, "deny", reason)
    assert re.fullmatch(r"[0-9a-f]{64}", reviewer_id), reviewer_id  # pseudonymised, never the typed user id
    client = _store(ui)
    try:
        # linked: the review span carries a span link to the decision's span
        (linked,) = client.query(
            "SELECT count() FROM otel_traces AS r INNER JOIN otel_traces AS d "
            "  ON has(r.`Links.SpanId`, d.SpanId) AND has(r.`Links.TraceId`, d.TraceId) "
            "WHERE r.SpanName = 'decision.review' AND r.SpanAttributes['decision.review.id'] = {r:String} "
            "  AND r.SpanAttributes['prefect.flow_run.id'] = {run:String} "
            "  AND d.SpanAttributes['decision.id'] = {d:String} AND d.SpanName LIKE 'decision %'",
            parameters={"r": review_id, "d": decision_id, "run": run_id},
        ).result_rows[0]
        assert linked == 1, "the review span has no link to the decision's span"
        (review_spans,) = client.query(
            "SELECT count() FROM otel_traces WHERE SpanAttributes['decision.review.id'] = {r:String}",
            parameters={"r": review_id},
        ).result_rows[0]
        assert review_spans == 1, f"the review was recorded {review_spans} times"
        requested = client.query(
            "SELECT reference, channel FROM decision_events FINAL WHERE decision_id = {d:String} "
            "AND type = 'review_requested'", parameters={"d": decision_id},
        ).result_rows
        assert requested == [(f"flow-run/{run_id}/otel-review-1", "prefect-ui")], requested
        answered = run_query(client, "review_response_times", {"flow_run_id": run_id}).as_dicts()
        assert [(r["decision_id"], r["status"], r["action"]) for r in answered] == [(decision_id, "reviewed", "override")]
        assert answered[0]["seconds_to_review"] is not None and answered[0]["seconds_to_review"] >= 0
    finally:
        client.close()


def _artifacts(server: PrefectServer, run_id: str) -> dict[str, dict[str, Any]]:
    found = _api(server, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}})
    return {a["key"]: a for a in found}


def _check_artifacts(
    server: PrefectServer, run_id: str, decision_id: str, review: str, earlier: bool = False
) -> dict[str, dict[str, Any]]:
    artifacts = _artifacts(server, run_id)
    assert set(artifacts) == {"decisions-review-underwriting", "decisions-review-underwriting-summary"}, artifacts
    table = artifacts["decisions-review-underwriting"]
    assert table["type"] == "table"
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    assert rows == [{"decision_id": decision_id, "type": "credit.approval", "outcome": "deny", "confidence": 0.58,
                     "threshold": 0.5, "model_version": "credit-risk-lr 3.2.0", "review": review,
                     "recorded_earlier": earlier}], rows
    summary = artifacts["decisions-review-underwriting-summary"]["data"]
    recorded_here = "| Decisions recorded | **0** |" if earlier else "| Decisions recorded | **1** |"
    assert recorded_here in summary and "| Below their threshold | 1 |" in summary
    assert "| Awaiting review | **0** |" in summary and "| Overrides recorded in this run | 1 |" in summary
    assert f"otel-decisions report --flow-run {run_id}" in summary
    text = json.dumps(artifacts).replace("\\", "")  # markdown escapes out
    for clear in CLEAR_VALUES:
        assert clear not in text, f"{clear!r} in clear in an artifact"
    return artifacts


def _check_prefect_keeps_no_clear_answer(server: PrefectServer, run_id: str, reviewer: str) -> None:
    """Once recorded, the answer as typed (the reviewer's id in clear) is gone from Prefect's flow-run inputs;
    what is kept is the review as recorded."""
    inputs = _api(server, "POST", f"/flow_runs/{run_id}/input/filter", {"prefix": "", "limit": 100})
    keys = {i["key"] for i in inputs}
    assert "otel-review-1-decisions" in keys and "otel-review-1-recorded" in keys, keys
    assert not any(k.endswith("-response") for k in keys), keys
    text = json.dumps(inputs).replace("\\", "")
    for clear in (reviewer, "sam.sample@example.org", "APP-SYN-0042"):
        assert clear not in text, f"{clear!r} in clear in Prefect's flow-run inputs"
    (recorded,) = [json.loads(i["value"]) for i in inputs if i["key"] == "otel-review-1-recorded"]
    assert re.fullmatch(r"[0-9a-f]{64}", recorded["reviews"][0]["reviewer_id"])


def _see_artifacts_in_ui(page: Any, server: PrefectServer, run_id: str, artifacts: dict[str, Any], review: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server.url}/v2/runs/flow-run/{run_id}")
    page.get_by_role("tab", name="Artifacts").click()
    expect(page.get_by_text("decisions-review-underwriting-summary").first).to_be_visible()
    expect(page.get_by_text("decisions-review-underwriting", exact=True).first).to_be_visible()
    page.goto(f"{server.url}/v2/artifacts/artifact/{artifacts['decisions-review-underwriting']['id']}")
    table = page.get_by_role("table").first
    expect(table).to_contain_text(review)
    expect(table).to_contain_text("credit-risk-lr 3.2.0")


def _flow_run_processes(run_id: str) -> list[int]:
    """Live processes running *run_id* (a worker's flow-run subprocess has it in PREFECT__FLOW_RUN_ID)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"PREFECT__FLOW_RUN_ID={run_id}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


# --- the tests -------------------------------------------------------------------------------------
def test_pause_review_form_in_the_prefect_ui(ui: dict[str, Any], tmp_path: Path) -> None:
    server, env = ui["server"], ui["env"]
    before = _run_ids(server)
    log = tmp_path / "flow.log"
    process = start_background([sys.executable, str(REVIEW_APP), "pause"], env, log)
    try:
        run = _paused_run(server, before)
        run_id = run["id"]
        assert run["state"]["state_details"]["pause_key"] == "otel-review-1"
        assert not run["state"]["state_details"].get("pause_reschedule")  # paused, the process waits
        reason = "Income verified from payslips; debt-to-income recomputed at 0.31"
        with playwright_page() as page:
            form = _answer_in_ui(page, server, run_id, new_outcome="approve", reason=reason, reviewer="analyst-07",
                                 screenshot=tmp_path / "form.png")
            process.wait(timeout=120)
            output = log.read_text()
            (line,) = re.findall(r"^RESULT (.*)$", output, re.M)
            result = json.loads(line)
            _check_form(form, result["decision_id"])
            _check_screenshot(tmp_path / "form.png")
            assert (result["action"], result["outcome"]) == ("override", "approve"), output[-3000:]
            assert 0 <= result["waited_seconds"] < 120
            assert server.wait_finished(run_id) == "COMPLETED"
            _check_review_stored(ui, run_id, result["decision_id"], "approve", reason)
            _check_prefect_keeps_no_clear_answer(server, run_id, "analyst-07")
            artifacts = _check_artifacts(server, run_id, result["decision_id"], "overridden: approve")
            _see_artifacts_in_ui(page, server, run_id, artifacts, "overridden: approve")
        ui["paused_run"] = (run_id, result["decision_id"])
    finally:
        stop_group(process)


def test_suspended_review_resumes_on_a_worker(ui: dict[str, Any], tmp_path: Path) -> None:
    server, env = ui["server"], ui["env"]
    created = subprocess.run([str(BIN / "prefect"), "work-pool", "create", "review-pool", "--type", "process"],
                             env=env, capture_output=True, text=True, timeout=180, cwd=APPS)
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = subprocess.run([sys.executable, str(REVIEW_APP), "deploy", "review-pool"], env=env,
                              capture_output=True, text=True, timeout=300, cwd=APPS)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    worker = start_background([str(BIN / "prefect"), "worker", "start", "--pool", "review-pool"], env,
                              tmp_path / "worker.log")
    try:
        before = _run_ids(server)
        run_id = run_deployment(f"{FLOW_NAME}/suspended-review", env)
        run = _paused_run(server, before)
        assert run["id"] == run_id
        assert run["state"]["state_details"]["pause_reschedule"] is True  # suspended: nothing waits in a process
        deadline = time.monotonic() + 60
        while _flow_run_processes(run_id) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _flow_run_processes(run_id), "the suspended flow run's process is still running"
        reason = "Guarantor added; refer to a senior underwriter"
        with playwright_page() as page:
            form = _answer_in_ui(page, server, run_id, new_outcome="refer", reason=reason, reviewer="analyst-11",
                                 screenshot=tmp_path / "form.png")
            _check_screenshot(tmp_path / "form.png")
            assert server.wait_finished(run_id, timeout_s=180) == "COMPLETED", (tmp_path / "worker.log").read_text()[-4000:]
        result = _api(server, "GET", f"/flow_runs/{run_id}")
        decisions = _wait_rows(ui, "SELECT decision_id FROM decisions FINAL WHERE flow_run_id = {r:String}",
                               {"r": run_id}, 1)
        assert len(decisions) == 1, f"the resumed run made its decision again: {decisions}"
        (decision_id,) = decisions[0]
        _check_form(form, decision_id)
        _check_review_stored(ui, run_id, decision_id, "refer", reason)
        # the resumed run's scoring task came from Prefect's cache, not a second decision
        tasks = _api(server, "POST", "/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
        assert sorted(t["state"]["name"] for t in tasks) == ["Cached", "Completed"], [t["state"] for t in tasks]
        assert result["state"]["type"] == "COMPLETED"
        _check_prefect_keeps_no_clear_answer(server, run_id, "analyst-11")
        # the resumed run lists the decision it reviewed, recorded before it suspended
        _check_artifacts(server, run_id, decision_id, "overridden: refer", earlier=True)
    finally:
        stop_group(worker)


def test_a_review_that_times_out_is_recorded_never_approved(ui: dict[str, Any], tmp_path: Path) -> None:
    env = ui["env"]
    ran = subprocess.run([sys.executable, str(REVIEW_APP), "timeout"], env=env, capture_output=True, text=True,
                         timeout=300, cwd=APPS)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    (line,) = re.findall(r"^RESULT (.*)$", ran.stdout, re.M)
    result = json.loads(line)
    assert result["timed_out"] == [result["decision_id"]]  # the flow caught ReviewTimeout and ran on
    expired = _wait_rows(ui, "SELECT type, reference FROM decision_events FINAL WHERE decision_id = {d:String} "
                             "ORDER BY type", {"d": result["decision_id"]}, 2)
    assert [t for t, _r in expired] == ["review_expired", "review_requested"], expired
    client = _store(ui)
    try:
        (reviews,) = client.query("SELECT count() FROM decision_reviews FINAL WHERE decision_id = {d:String}",
                                  parameters={"d": result["decision_id"]}).result_rows[0]
        assert reviews == 0
        rows = run_query(client, "review_response_times", {"status": "expired"}).as_dicts()
        assert [r["decision_id"] for r in rows] == [result["decision_id"]]
        assert rows[0]["action"] == "" and rows[0]["seconds_to_review"] is None
    finally:
        client.close()


def test_report_for_one_flow_run_matches_the_catalogue(ui: dict[str, Any], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    if "paused_run" not in ui:
        pytest.skip("needs the paused run of test_pause_review_form_in_the_prefect_ui")
    run_id, decision_id = ui["paused_run"]
    out = tmp_path / "run.html"
    ran = subprocess.run([sys.executable, "-m", "otel_decisions.cli", "report", "--flow-run", run_id, "--out", str(out),
                          "--dsn", ui["dsn"]], env=ui["env"], capture_output=True, text=True, timeout=300, cwd=APPS)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"flow run {run_id} (1 decisions)" in " ".join(ran.stderr.split())
    html = out.read_text(encoding="utf-8")
    client = _store(ui)
    try:
        summary = run_query(client, "period_summary", {"flow_run_id": run_id}).as_dicts()[0]
        adverse = run_query(client, "adverse_action_reasons", {"flow_run_id": run_id})
        trail = run_query(client, "flow_run_audit_trail", {"flow_run_id": run_id}).as_dicts()
        everything = run_query(client, "period_summary", {}).as_dicts()[0]
    finally:
        client.close()
    assert (summary["decisions"], summary["reviews"], summary["overrides"], summary["adverse"]) == (1, 1, 1, 1)
    assert everything["decisions"] > summary["decisions"]  # other runs' decisions are left out
    sections = parse(html)
    assert " ".join(sections.text["flow-run-id"]).strip() == run_id
    assert " ".join(sections.text["count-decisions"]).split()[0] == "1"
    assert " ".join(sections.text["count-overrides"]).split()[0] == "1"
    assert sections.tags["table-adverse"]["tr"] - 1 == len(adverse.rows) == 1
    assert sections.tags["table-flow-run"]["tr"] - 1 == len(trail) == 2
    trail_text = " ".join(sections.text["table-flow-run"])
    assert decision_id in trail_text and "override" in trail_text
    with playwright_page() as page:
        page.goto(out.resolve().as_uri())
        expect(page.get_by_test_id("table-flow-run").locator("tbody tr")).to_have_count(2)
        expect(page.get_by_test_id("table-adverse").locator("tbody tr")).to_have_count(1)
        expect(page.get_by_test_id("table-adverse")).to_contain_text("Debt-to-income ratio above 0.40")
        expect(page.get_by_test_id("flow-run-id")).to_have_text(run_id)
        for clear in CLEAR_VALUES:
            assert clear not in page.content()
