"""Run a benchmark script from an earlier commit and from this tree, interleaved, in one run.

The machine is noisy, so a before/after claim is only worth what one run on it shows: the two
trees take turns (before, now, now, before, ...: who goes first alternates) and every run's output is printed in full, then
the numbers found on the chosen lines side by side with their ratio.

    .venv/bin/python benchmarks/compare.py --base 36d0466 --rounds 3 -- benchmarks/capture.py
    .venv/bin/python benchmarks/compare.py --base 36d0466 -- benchmarks/storage.py --decisions 200000

The earlier commit is checked out with ``git worktree`` into a temporary directory and imported
from there (``PYTHONPATH``), with this virtual environment's packages.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"(-?\d+(?:\.\d+)?)\s*(us|ms|s|x|%|/s)?")


def _run(tree: Path, script: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run([sys.executable, *script], cwd=tree, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{script[0]} failed in {tree}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _numbers(output: str) -> dict[str, float]:
    """label -> first number on each line that has a ':' label (the benchmarks print 'label: value unit')."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        label, sep, rest = line.partition(":")
        match = NUMBER.search(rest) if sep else None
        if match and label.strip():
            found[label.strip()] = float(match.group(1))
        elif len(parts := line.split()) > 2 and re.fullmatch(r"[a-z_]+", parts[0]):  # table rows: name value ...
            try:
                found[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("script", nargs=argparse.REMAINDER, help="-- SCRIPT [ARGS...] (a path relative to the repo)")
    args = parser.parse_args()
    script = [part for part in args.script if part != "--"]
    if not script:
        parser.error("name the benchmark script after --")
    with tempfile.TemporaryDirectory(prefix="otel-decisions-base-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base], check=True,
                       capture_output=True)
        try:
            runs: dict[str, list[dict[str, float]]] = {"before": [], "now": []}
            for round_ in range(1, args.rounds + 1):
                trees = (("before", base), ("now", ROOT))
                for name, tree in trees if round_ % 2 else trees[::-1]:  # alternate who goes first
                    output = _run(tree, script)
                    print(f"--- round {round_}, {name} ({args.base if name == 'before' else 'working tree'}) ---")
                    print(output, flush=True)
                    runs[name].append(_numbers(output))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    labels = [label for label in runs["now"][0] if all(label in r for r in runs["before"] + runs["now"])]
    print(f"=== median of {args.rounds} interleaved rounds: before ({args.base}) / now ===")
    for label in labels:
        before = statistics.median(r[label] for r in runs["before"])
        now = statistics.median(r[label] for r in runs["now"])
        ratio = f"{now / before:6.2f}x" if before else "     -"
        print(f"{label[:58]:<58} {before:>10.2f} {now:>10.2f} {ratio}")


if __name__ == "__main__":
    main()
