"""Canonical stored-text rendering: an attribute value as the ClickHouse exporters store it.

The collector's clickhouse exporter stores ``pcommon.Value.AsString()``; the direct exporter and
the record digest use the same rendering, so ``verify`` recomputes a digest from the stored
``otel_traces.SpanAttributes`` of either path.

Example::

    from otel_decisions.integrity import attribute_to_string

    attribute_to_string(("a", "b"))  # '["a","b"]'
    attribute_to_string(0.1)         # '0.1'
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any


class _NotJSON(ValueError):
    """A value Go's encoding/json refuses (NaN / ±Inf inside a slice)."""


def _go_float(value: float) -> str:
    # pcommon float64AsString / encoding/json floatEncoder: 'f' unless abs < 1e-6 or >= 1e21,
    # shortest round-trip digits, "e-07" cleaned to "e-7".
    text = repr(value)
    if "e" not in text and "n" not in text:
        # 1e-4 <= |value| < 1e16 (or zero): repr is already Go's 'f' form, bar a trailing ".0"
        # (repr's shortest digits never end in another zero). "n": nan and inf.
        return text[:-2] if text.endswith(".0") else text
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    magnitude = abs(value)
    text = repr(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        # repr is already exponent form in this range; Go pads the exponent to two digits.
        mantissa, _, exponent = text.partition("e")
        sign = exponent[0]
        digits = exponent[1:].lstrip("0") or "0"
        if len(digits) < 2:
            digits = "0" + digits
        if sign == "-" and digits.startswith("0"):
            digits = digits[1:]
        if mantissa.endswith(".0"):
            mantissa = mantissa[:-2]
        return f"{mantissa}e{sign}{digits}"
    if "e" in text or "E" in text:
        from decimal import Decimal

        text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _go_json_string(value: str) -> str:
    # encoding/json with SetEscapeHTML(false): \" \\ \b \f \n \r \t, other C0 as \u00xx,
    # U+2028/U+2029 escaped, everything else raw. json.dumps(ensure_ascii=False) matches
    # except for the two line separators.
    text = json.dumps(value, ensure_ascii=False)
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


def _go_json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _NotJSON(value)
        return _go_float(value)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, (bytes, bytearray)):
        return '"' + base64.standard_b64encode(bytes(value)).decode() + '"'
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_go_json_string(k)}:{_go_json(v)}" for k, v in items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(_go_json(item) for item in value) + "]"
    return _go_json_string(str(value))


def attribute_to_string(value: Any) -> str:
    """``pcommon.Value.AsString()`` of the OTLP value the Python SDK would send for *value*."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return _go_float(value)
    if kind is tuple or kind is list:
        # Fast path for the common string[] attribute; same bytes as _go_json.
        if not value:
            return "[]"
        try:
            joined = '","'.join(value)  # TypeError unless every item is a str
        except TypeError:
            joined = None
        if joined is not None:
            # Nothing to escape in any item (the only quotes are the separators'): the JSON is the text itself.
            if _NEEDS_ESCAPE_BUT_QUOTE.search(joined) is None and joined.count('"') == 2 * len(value) - 2:
                return '["' + joined + '"]'
            text = _dumps_compact(value)
            if "\u2028" in text or "\u2029" in text:
                text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
            return text
    if isinstance(value, (bytes, bytearray)):
        return base64.standard_b64encode(bytes(value)).decode()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return str(value)
    try:
        return _go_json(value)
    except _NotJSON:
        return ""  # json.Encoder fails on NaN; AsString ignores the error and yields "".


_dumps_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_NEEDS_ESCAPE_BUT_QUOTE = re.compile("[\x00-\x1f\\\\\u2028\u2029]")
