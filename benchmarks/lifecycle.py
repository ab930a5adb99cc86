"""Life-cycle benchmark: disposal, erasure and verify-with-tombstones on the served embedded database.

Prints, in one run over the same seeded store (N decisions through ``ClickHouseSpanExporter``,
two retention classes of six years, decisions spread over eight weeks; some subjects on hold):

1. ``retention apply`` disposing of about half the decisions (those past ``retain_until`` at a
   chosen day) against the baseline of writing the same decisions (the export): the ratio says
   what a disposal costs relative to recording;
2. ``verify`` after the disposal (tombstones in place of the removed links) against ``verify``
   of the same store before it;
3. ``erase`` of one subject against ``query run subject_decisions`` for that subject (the
   access request a DPO answers first).

Run: ``.venv/bin/python benchmarks/lifecycle.py [--decisions 100000]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from otel_decisions import lifecycle  # noqa: E402
from otel_decisions.catalogue import run_query  # noqa: E402
from otel_decisions.store import embedded  # noqa: E402
from otel_decisions.store.client import get_client  # noqa: E402
from otel_decisions.store.exporter import ClickHouseSpanExporter  # noqa: E402
from otel_decisions.verify import verify  # noqa: E402
from tests.seed import build_seed  # noqa: E402

KEY = b"benchmark-key-0123456789"


def timed(fn):  # noqa: ANN001, ANN201
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-lifecycle-"))
    client = get_client(f"chdb://{data_dir}?database=otel_bench", role="admin")
    try:
        data = build_seed(args.decisions, seed=5)
        exporter = ClickHouseSpanExporter(client=client, insert_rows=10_000)
        exporter.export(data.spans[:10])
        write_s, _ = timed(lambda: exporter.export(data.spans))
        decisions = len(data.decisions)
        print(f"store: {decisions} decisions, {len(data.reviews)} reviews written in {write_s:.2f} s "
              f"({decisions / write_s:,.0f}/s)")
        held = sorted({d.subject_id for d in data.decisions})[:20]
        lifecycle.place_hold(client, "subject", held, reason="benchmark", reference="B-1", actor="bench")
        print(f"legal hold on {len(held)} subjects")

        verify_before_s, before = timed(lambda: verify(client, key=KEY))
        # Seeded decisions run from 2026-01-05 for eight weeks: six years later, about half are due.
        as_of = date(2032, 2, 2)
        dispose_s, result = timed(lambda: lifecycle.apply_retention(client, actor="bench", key=KEY, as_of=as_of))
        verify_after_s, after = timed(lambda: verify(client, key=KEY))
        print(f"retention apply: {len(result.deleted)} decisions ({result.links} records) disposed, {result.held} "
              f"held, in {dispose_s:.2f} s = {dispose_s / write_s:.2f}x the time to write the store "
              f"({len(result.deleted) / dispose_s:,.0f} decisions/s)")
        print(f"verify: {before.checked} records in {verify_before_s:.2f} s before; {after.checked} records + "
              f"{after.removed} tombstones in {verify_after_s:.2f} s after = {verify_after_s / verify_before_s:.2f}x "
              f"(problems before/after: {len(before.problems)}/{len(after.problems)}: the seed's one broken link, and after, "
              "the disposal signed with another key than the seed's made-up key id)")

        remaining = client.query("SELECT subject_id FROM decisions FINAL WHERE subject_id NOT IN "
                                 "(SELECT target FROM active_legal_holds) LIMIT 1").result_rows[0][0]
        read_s, read = timed(lambda: run_query(client, "subject_decisions", {"subject_id": remaining}))
        erase_s, erased = timed(lambda: lifecycle.erase_subject(client, remaining, request="B-DSR", actor="bench", as_of=date(2032, 6, 1),
                                                                key=KEY))
        print(f"erase one subject ({len(erased.deleted)} erased, {len(erased.kept)} kept of {len(read.rows)}): "
              f"{erase_s:.3f} s = {erase_s / read_s:.1f}x its subject_decisions query ({read_s * 1000:.0f} ms)")
    finally:
        client.close()
        embedded.stop_server(data_dir)


if __name__ == "__main__":
    main()
