#!/usr/bin/env python3
"""Generate the README's attribute table, query catalogue and settings table from the code.

    python scripts/readme_tables.py --write   # rewrite the marked sections of README.md
    python scripts/readme_tables.py --check   # exit 1 if README.md is out of date (tests do this)

Sections sit between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def attributes_table() -> str:
    from otel_decisions import semconv

    lines = ["| key | type | meaning |", "|---|---|---|"]
    for key, (kind, text) in semconv.DECISION_ATTRIBUTES.items():
        lines.append(f"| `{key}` | {kind} | {text} |")
    lines += ["", f"Review spans (`{semconv.REVIEW_SPAN_NAME}`, linked to the decision's span):", "",
              "| key | type | meaning |", "|---|---|---|"]
    for key, (kind, text) in semconv.REVIEW_ATTRIBUTES.items():
        lines.append(f"| `{key}` | {kind} | {text} |")
    lines += ["", f"Event spans (`{semconv.EVENT_SPAN_NAME}`, linked to the decision's span): corrections "
              "(`record_correction`) and adverse-action notices sent (`record_notice`):", "",
              "| key | type | meaning |", "|---|---|---|"]
    for key, (kind, text) in semconv.EVENT_ATTRIBUTES.items():
        lines.append(f"| `{key}` | {kind} | {text} |")
    lines += ["", f"On run spans: `{semconv.DECISION_FLOW_CAPTURED}` (int), the decisions a process recorded for the "
              "flow run since the last count: always on the flow-run span, and on a task-run span (with "
              f"`{semconv.PREFECT_FLOW_RUN_ID}`) whose process recorded any; their sum is what the flow run recorded, "
              "in however many processes (`delivery_completeness` adds them up).",
              "",
              f"Checkpoint spans (`{semconv.CHECKPOINT_SPAN_NAME}`, at every flow run's end, on `force_flush()` and at "
              f"shutdown): `{semconv.DECISION_INTEGRITY_CHAIN}`, `{semconv.DECISION_INTEGRITY_SEQ}` and "
              f"`{semconv.DECISION_INTEGRITY_HASH}` of the chain head, `{semconv.DECISION_INTEGRITY_SIGNATURE}` "
              f"(HMAC-SHA256 with the pseudonym key over `chain|seq|hash`) and `{semconv.DECISION_PSEUDONYM_KEY_ID}`."]
    return "\n".join(lines)


def queries_table() -> str:
    from otel_decisions.catalogue import load_catalogue

    lines = ["| name | question | regulations |", "|---|---|---|"]
    for name, query in sorted(load_catalogue().items()):
        regs = query.regulations if isinstance(query.regulations, str) else "; ".join(query.regulations)
        lines.append(f"| `{name}` | {query.title} | {regs} |")
    return "\n".join(lines)


def settings_table() -> str:
    from otel_decisions.settings import ENV_PREFIX, DecisionSettings

    lines = ["| environment variable | default | meaning |", "|---|---|---|"]
    for name, info in DecisionSettings.model_fields.items():
        if info.default_factory is not None:
            default = info.default_factory()
            if isinstance(default, list):
                default = ",".join(default) if len(default) <= 3 else f"{len(default)} built-in entries"
            elif isinstance(default, Path):
                default = "~/.local/share/otel-decisions"
        else:
            default = info.default
        shown = "unset" if default is None else f"`{default}`"
        lines.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {info.description} |")
    return "\n".join(lines)


SECTIONS = {"attributes": attributes_table, "queries": queries_table, "settings": settings_table}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n)(.*?)(<!-- END {name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- BEGIN {name} --> ... <!-- END {name} --> section")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(3), text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    current = README.read_text()
    wanted = render(current)
    if args.write:
        README.write_text(wanted)
        return 0
    if current != wanted:
        print("README.md is out of date: run python scripts/readme_tables.py --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
