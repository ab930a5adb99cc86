"""Query results as a terminal table, CSV, JSON (a list of objects) or a Markdown table.

Example::

    from otel_decisions.output.tables import render_rows

    print(render_rows(["outcome", "n"], [("approve", 3)], "csv"))
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any

from rich.table import Table

FORMATS = ("table", "csv", "json", "markdown")


def cell_text(value: Any) -> str:
    """One value as table text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (list, tuple)):
        return json.dumps([jsonable(v) for v in value], ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def jsonable(value: Any) -> Any:
    """One value as JSON-able data (dates as ISO text, NaN as null)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, float) and value != value:
        return None
    return value


def render_rows(columns: list[str], rows: list[tuple[Any, ...]], fmt: str, title: str | None = None) -> str | Table:
    """Rows as a rich table, CSV, JSON (list of objects) or a Markdown table."""
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[cell_text(v) for v in row] for row in rows])
        return buffer.getvalue()
    if fmt == "json":
        return json.dumps(
            [dict(zip(columns, map(jsonable, row), strict=True)) for row in rows], ensure_ascii=False, indent=2
        )
    if fmt == "markdown":

        def cell(value: Any) -> str:
            return cell_text(value).replace("|", "\\|").replace("\n", " ")

        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
        return "\n".join(lines)
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[cell_text(v) for v in row])
    return table
