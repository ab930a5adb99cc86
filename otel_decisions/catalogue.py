"""The compliance query catalogue: ``queries/*.sql`` files with a metadata header.

Each file answers one question. Its header is a block of ``--`` comment lines at the top::

    -- name: adverse_action_reasons                  (must equal the file name without .sql)
    -- title: Adverse decisions with their principal reasons
    -- description: One or more lines; repeat the key to continue the text.
    -- regulations: Reg B 12 CFR 1002.9; FCRA 615(a)   (';'-separated)
    -- param: start DateTime64(3) = 2000-01-01 00:00:00 | start of the period, inclusive (UTC)
    -- param: subject_id String | pseudonymised subject id (no default: required)

Parameters are ClickHouse query parameters, ``{start:DateTime64(3)}`` in the SQL body, with
exactly the declared name and type: values are bound by the server, never interpolated.
Supported types: String, Bool, (U)Int8..64, Float32/64, Date, DateTime, DateTime64(p),
Array(String), Array(Float64). Text values (CLI, defaults) use ISO dates and
comma-separated or JSON lists. Times are UTC (the client sets ``session_timezone``).

Example::

    from otel_decisions.catalogue import load_catalogue, run_query
    result = run_query(client, "subject_decisions", {"subject_id": "a1b2..."})
    for row in result.rows: ...
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from otel_decisions.errors import OtelDecisionsError
from otel_decisions.store.errors import store_error

__all__ = [
    "QueryError",
    "QueryParam",
    "CatalogQuery",
    "QueryResult",
    "queries_dir",
    "load_catalogue",
    "parse_query_file",
    "get_query",
    "run_query",
]

REQUIRED_KEYS = ("name", "title", "description", "regulations")
_HEADER_LINE = re.compile(r"^--\s*([a-z_]+)\s*:\s?(.*)$")
_PARAM_DECL = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s+(?P<type>\S+)(?:\s*=\s*(?P<default>.*?))?\s*\|\s*(?P<desc>.+)$"
)
_PLACEHOLDER = re.compile(r"\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}")
_INT_TYPES = {f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)}
_SCALAR_TYPES = {"String", "Bool", "Float32", "Float64", "Date", "DateTime", *_INT_TYPES}
_DT64 = re.compile(r"^DateTime64\(([0-9])\)$")


class QueryError(OtelDecisionsError):
    """A catalogue problem: unknown query, bad header, missing or mistyped parameter."""


def _supported(type_name: str) -> bool:
    return (
        type_name in _SCALAR_TYPES or bool(_DT64.match(type_name)) or type_name in ("Array(String)", "Array(Float64)")
    )


def parse_datetime(text: str) -> datetime:
    raw = text.strip().replace("T", " ")
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    value = datetime.fromisoformat(raw)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _split_list(text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        value = json.loads(stripped)
        if not isinstance(value, list):
            raise ValueError("not a list")
        return [str(item) for item in value]
    return [part.strip() for part in stripped.split(",") if part.strip()]


@dataclass(frozen=True)
class QueryParam:
    """A typed query parameter declared in a file's header."""

    name: str
    type: str
    default: str | None
    description: str

    @property
    def required(self) -> bool:
        return self.default is None

    def convert(self, value: Any) -> Any:
        """The value to bind for *value* (text or a Python value); ``ValueError`` if it does not fit."""
        t = self.type
        if t == "String":
            return value if isinstance(value, str) else str(value)
        if t == "Bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if t in _INT_TYPES:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            number = int(value) if isinstance(value, int) else int(str(value).strip())
            if t.startswith("U") and number < 0:
                raise ValueError("expected a non-negative integer")
            return number
        if t in ("Float32", "Float64"):
            real = float(value) if not isinstance(value, str) else float(value.strip())
            if not math.isfinite(real):
                raise ValueError("expected a finite number")
            return real
        if t == "Date":
            day = (
                value
                if isinstance(value, date) and not isinstance(value, datetime)
                else date.fromisoformat(str(value).strip()[:10])
            )
            return day.isoformat()
        if t == "DateTime" or _DT64.match(t):
            moment = value if isinstance(value, datetime) else parse_datetime(str(value))
            if moment.tzinfo is not None:
                moment = moment.astimezone(UTC).replace(tzinfo=None)
            if t == "DateTime":
                return moment.strftime("%Y-%m-%d %H:%M:%S")
            return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        if t == "Array(String)":
            items = value if isinstance(value, (list, tuple)) else _split_list(str(value))
            return [str(item) for item in items]
        if t == "Array(Float64)":
            items = value if isinstance(value, (list, tuple)) else _split_list(str(value))
            return [float(item) for item in items]
        raise ValueError(f"unsupported type {t}")  # guarded by the header validation


@dataclass(frozen=True)
class CatalogQuery:
    """One catalogue entry: metadata from the header plus the SQL body."""

    name: str
    title: str
    description: str
    regulations: tuple[str, ...]
    params: tuple[QueryParam, ...]
    sql: str
    path: Path

    def param(self, name: str) -> QueryParam | None:
        return next((p for p in self.params if p.name == name), None)

    def bind(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Typed values for every parameter: given ones converted, the rest from defaults."""
        values = dict(values or {})
        unknown = sorted(set(values) - {p.name for p in self.params})
        if unknown:
            known = ", ".join(p.name for p in self.params) or "none"
            raise QueryError(f"query {self.name!r} has no parameter {', '.join(unknown)} (its parameters: {known})")
        bound: dict[str, Any] = {}
        for param in self.params:
            if param.name in values and values[param.name] is not None:
                raw = values[param.name]
            elif param.default is not None:
                raw = param.default
            else:
                raise QueryError(
                    f"query {self.name!r} needs parameter {param.name!r} ({param.type}: {param.description}); "
                    f"pass --param {param.name}=VALUE"
                )
            try:
                bound[param.name] = param.convert(raw)
            except (ValueError, TypeError, json.JSONDecodeError) as exc:
                raise QueryError(
                    f"query {self.name!r}: parameter {param.name!r} must be {param.type}, got {raw!r} ({exc})"
                ) from None
        return bound


@dataclass
class QueryResult:
    """Rows of one catalogue query."""

    query: CatalogQuery
    columns: list[str]
    rows: list[tuple[Any, ...]]
    parameters: dict[str, Any] = field(default_factory=dict)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def queries_dir() -> Path:
    """``queries/`` next to the package in a source checkout, else the copy packaged in the wheel."""
    package = Path(__file__).resolve().parent
    source = package.parent / "queries"
    if source.is_dir() and any(source.glob("*.sql")):
        return source
    return package / "_queries"


def parse_query_file(path: Path) -> CatalogQuery:
    """Parse and validate one ``.sql`` file; :class:`QueryError` naming the file and the problem."""
    text = path.read_text(encoding="utf-8")
    header: dict[str, list[str]] = {}
    body_lines: list[str] = []
    in_header = True
    for line in text.splitlines():
        if in_header:
            match = _HEADER_LINE.match(line.strip())
            if match:
                header.setdefault(match.group(1), []).append(match.group(2).strip())
                continue
            if not line.strip() or line.strip() == "--":
                continue
            in_header = False
        body_lines.append(line)
    where = f"query file {path}"
    missing = [key for key in REQUIRED_KEYS if not any(header.get(key, []))]
    if missing:
        raise QueryError(f"{where}: header lacks {', '.join(missing)} (see otel_decisions/catalogue.py for the format)")
    unknown = sorted(set(header) - {*REQUIRED_KEYS, "param"})
    if unknown:
        raise QueryError(f"{where}: unknown header key(s) {', '.join(unknown)}")
    name = header["name"][0]
    if name != path.stem:
        raise QueryError(f"{where}: header name {name!r} must equal the file name {path.stem!r}")
    params: list[QueryParam] = []
    for decl in header.get("param", []):
        match = _PARAM_DECL.match(decl)
        if not match:
            raise QueryError(f"{where}: bad param line {decl!r}; use 'NAME Type = default | description'")
        param = QueryParam(match["name"], match["type"], match["default"], match["desc"].strip())
        if not _supported(param.type):
            raise QueryError(f"{where}: param {param.name} has unsupported type {param.type}")
        if param.default is not None:
            try:
                param.convert(param.default)
            except (ValueError, json.JSONDecodeError) as exc:
                raise QueryError(f"{where}: default of {param.name} is not a {param.type}: {exc}") from None
        params.append(param)
    sql = "\n".join(body_lines).strip().rstrip(";").strip()
    if not sql:
        raise QueryError(f"{where}: no SQL after the header")
    declared = {p.name: p.type for p in params}
    used: dict[str, str] = {}
    for match in _PLACEHOLDER.finditer(sql):
        pname, ptype = match.group(1), match.group(2).strip()
        if used.setdefault(pname, ptype) != ptype:
            raise QueryError(f"{where}: parameter {pname} used with two types ({used[pname]}, {ptype})")
    if used != declared:
        raise QueryError(
            f"{where}: parameters in the SQL {sorted(used.items())} differ from the header {sorted(declared.items())}"
        )
    return CatalogQuery(
        name=name,
        title=" ".join(header["title"]),
        description=" ".join(header["description"]),
        regulations=tuple(r.strip() for r in "; ".join(header["regulations"]).split(";") if r.strip()),
        params=tuple(params),
        sql=sql,
        path=path,
    )


@lru_cache(maxsize=4)
def _load(directory: Path) -> dict[str, CatalogQuery]:
    files = sorted(directory.glob("*.sql"))
    if not files:
        raise QueryError(f"no query files in {directory}")
    return {query.name: query for query in map(parse_query_file, files)}


def load_catalogue(directory: Path | None = None) -> dict[str, CatalogQuery]:
    """Every query in *directory* (default :func:`queries_dir`), by name, validated."""
    return dict(_load((directory or queries_dir()).resolve()))


def get_query(name: str, directory: Path | None = None) -> CatalogQuery:
    """The query called *name*; :class:`QueryError` listing close names otherwise."""
    catalogue = load_catalogue(directory)
    if name in catalogue:
        return catalogue[name]
    import difflib

    close = difflib.get_close_matches(name, list(catalogue), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else "; run `otel-decisions query list`"
    raise QueryError(f"unknown query {name!r}{hint}")


def run_query(
    client: Any, query: str | CatalogQuery, params: Mapping[str, Any] | None = None, *, directory: Path | None = None
) -> QueryResult:
    """Bind *params* (text or Python values) and run the query on *client*."""
    entry = query if isinstance(query, CatalogQuery) else get_query(query, directory)
    bound = entry.bind(params)
    try:
        result = client.query(entry.sql, parameters=bound)
    except Exception as exc:
        raise store_error(exc, f"query {entry.name!r}") from exc
    return QueryResult(entry, list(result.column_names), [tuple(row) for row in result.result_rows], bound)
