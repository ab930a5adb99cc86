"""From ``prefect deployment run`` to the decisions being queryable, for one run and three at once.

A real ``prefect server start``; the flow (``tests/apps/matrix_flow.py:plain``, 3 decisions per run)
served by ``flow.serve()`` or run by a process worker (``--via worker``). Recorded with the plugin,
against a baseline measured in the same run: the same deployment with otel-decisions off, timed
to the moment Prefect reports the flow run COMPLETED. Ratios > 1 are what recording adds before a
compliance query can see the run. Besides the end-to-end times, each run's own duration (Prefect's
start and end time of the flow run) and the lag from its end to its decisions being queryable are
printed: the end-to-end time also holds the runner's or worker's poll for new runs (``--poll``
seconds; Prefect's default is 10).

    python benchmarks/deployments.py [--via serve|worker] [--rounds 3] [--poll 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.production import (  # noqa: E402
    BIN,
    PrefectServer,
    deploy_to_pool,
    flow_env,
    run_deployment,
    serve_matrix,
    start_background,
    stop_group,
    store_dsn,
)

K = 3
_WALL = [0.0]  # wall-clock time of the last trigger (Prefect's run times are wall-clock)


def _queryable(dsn: str, run_ids: list[str], t0: float, timeout_s: float = 180) -> list[float]:
    """Seconds from *t0* until each flow run's K decisions are all in the store."""
    from otel_decisions.errors import StoreNotFoundError
    from otel_decisions.store.client import get_client

    done: dict[str, float] = {}
    client = None
    deadline = time.monotonic() + timeout_s
    while len(done) < len(run_ids) and time.monotonic() < deadline:
        try:
            client = client or get_client(dsn, role="reader")
            rows = client.query(
                "SELECT SpanAttributes['prefect.flow_run.id'], count() FROM otel_traces "
                "WHERE startsWith(SpanName, 'decision ') AND SpanAttributes['prefect.flow_run.id'] IN {ids:Array(String)} "
                "GROUP BY 1",
                parameters={"ids": run_ids},
            ).result_rows
        except StoreNotFoundError:
            rows = []
        now = time.monotonic()
        for run_id, count in rows:
            if count >= K and run_id not in done:
                done[run_id] = now - t0
        time.sleep(0.1)
    if client is not None:
        client.close()
    missing = set(run_ids) - set(done)
    if missing:
        raise SystemExit(f"decisions of {sorted(missing)} not queryable after {timeout_s} s")
    return [done[r] for r in run_ids]


def _completed(server: PrefectServer, run_ids: list[str], t0: float) -> list[float]:
    times: dict[str, float] = {}
    while len(times) < len(run_ids):
        for run_id in run_ids:
            if run_id not in times and (server.flow_run(run_id).get("state") or {}).get("type") == "COMPLETED":
                times[run_id] = time.monotonic() - t0
        time.sleep(0.1)
    return [times[r] for r in run_ids]


def _run_window(server: PrefectServer, run_id: str) -> tuple[float, float]:
    """Prefect's start and end time of a finished flow run (epoch seconds)."""
    from datetime import datetime

    run = server.flow_run(run_id)
    return datetime.fromisoformat(run["start_time"]).timestamp(), datetime.fromisoformat(run["end_time"]).timestamp()


def _trigger(name: str, env: dict[str, str], n: int) -> tuple[float, list[str]]:
    _WALL[0] = time.time()
    t0 = time.monotonic()
    with ThreadPoolExecutor(n) as pool:
        run_ids = list(pool.map(lambda _i: run_deployment(name, env, k=K), range(n)))
    return t0, run_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--via", choices=["serve", "worker"], default="serve")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--poll",
        type=float,
        default=1.0,
        help="seconds between the worker's polls (the runner's, rounded to whole seconds)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="otel-decisions-deployments-") as tmp:
        work = Path(tmp)
        with PrefectServer(work / "server") as server:
            processes: list[subprocess.Popen[bytes]] = []
            names = {}
            try:
                for label, plugin in (("baseline", False), ("recorded", True)):
                    side = work / label
                    side.mkdir()
                    env = flow_env(
                        side,
                        server.api_url,
                        plugin=plugin,
                        PREFECT_RUNNER_POLL_FREQUENCY=str(max(1, round(args.poll))),
                        PREFECT_WORKER_QUERY_SECONDS=str(args.poll),
                    )
                    if args.via == "serve":
                        processes.append(serve_matrix(env, f"bench-{label}", side / "serve.log"))
                    else:
                        deploy_to_pool(env, f"pool-{label}", f"bench-{label}", k=K)
                        processes.append(
                            start_background(
                                [str(BIN / "prefect"), "worker", "start", "--pool", f"pool-{label}"],
                                env,
                                side / "worker.log",
                            )
                        )
                    names[label] = (f"plain/bench-{label}", env, side)
                for label in names:
                    server.wait_deployment(names[label][0])
                # warm both paths once (first imports, the store's owner start)
                for label, (name, env, side) in names.items():
                    t0, ids = _trigger(name, env, 1)
                    _completed(server, ids, t0)
                    if label == "recorded":
                        _queryable(store_dsn(side), ids, t0)
                results: dict[tuple[str, int], list[float]] = {}
                for _round in range(args.rounds):
                    for n in (1, 3):
                        name, env, _side = names["baseline"]
                        t0, ids = _trigger(name, env, n)
                        results.setdefault(("baseline", n), []).append(max(_completed(server, ids, t0)))
                        windows = [_run_window(server, r) for r in ids]
                        results.setdefault(("baseline run", n), []).append(max(e - s for s, e in windows))
                        name, env, side = names["recorded"]
                        t0, ids = _trigger(name, env, n)
                        wall = _WALL[0]
                        results.setdefault(("completed", n), []).append(max(_completed(server, ids, t0)))
                        queryable = _queryable(store_dsn(side), ids, t0)
                        results.setdefault(("queryable", n), []).append(max(queryable))
                        windows = [_run_window(server, r) for r in ids]
                        results.setdefault(("recorded run", n), []).append(max(e - s for s, e in windows))
                        lags = [wall + q - end for q, (_s, end) in zip(queryable, windows, strict=True)]
                        results.setdefault(("lag", n), []).append(max(lags))
            finally:
                for process in processes:
                    stop_group(process)
    print(
        f"via {args.via}, poll every {args.poll:g} s, {args.rounds} rounds, {K} decisions per flow run; seconds "
        "from `prefect deployment run` (median of rounds; for 3 at once, until the last of them)"
    )
    print(
        f"{'runs':>5} {'baseline completed':>19} {'recorded completed':>19} {'queryable':>10} {'queryable/baseline':>19}"
    )
    for n in (1, 3):
        base = statistics.median(results[("baseline", n)])
        completed = statistics.median(results[("completed", n)])
        queryable = statistics.median(results[("queryable", n)])
        print(f"{n:>5} {base:>19.2f} {completed:>19.2f} {queryable:>10.2f} {queryable / base:>18.2f}x")
    print("the flow run itself (Prefect's start to end time) and the lag from its end to its decisions being queryable")
    print(f"{'runs':>5} {'baseline run':>13} {'recorded run':>13} {'ratio':>6} {'end -> queryable':>17}")
    for n in (1, 3):
        base_run = statistics.median(results[("baseline run", n)])
        recorded_run = statistics.median(results[("recorded run", n)])
        lag = statistics.median(results[("lag", n)])
        print(f"{n:>5} {base_run:>13.2f} {recorded_run:>13.2f} {recorded_run / base_run:>5.2f}x {lag:>17.2f}")


if __name__ == "__main__":
    main()
