"""The key policy, free-text scrubbing, truncation and pseudonyms: :class:`PrivacyPolicy` compiled
from settings, and :class:`PrivacyRecord`, which applies it to the fields of one record.

Example::

    record = PrivacyPolicy.from_settings(settings).new_record()
    attributes = record.mask_fields([("decision.inputs", "inputs", FieldKind.JSON, inputs)])
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import hashlib
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

import orjson

from otel_decisions import semconv
from otel_decisions.privacy._detect import scrub_identifiers
from otel_decisions.privacy._keys import key_id, resolve_hmac_key
from otel_decisions.settings import DecisionSettings

_SENTINEL = semconv.REDACTION_SENTINEL
_SHA256_BLOCK = 64
_MAX_DEPTH = 32

_NUMBERS = (int, float, bool, type(None))


_FORMATTING = str.maketrans("", "", " \t-.()/")
_DIGITS = frozenset("0123456789")


def compact_form(text: str) -> str | None:
    """A number-bearing *text* without the spaces, dashes, dots, slashes and brackets identifiers are
    written with ("QQ 12 34 56 C" as "QQ123456C"), when that differs and is still specific (6+
    characters); else ``None``."""
    compact = text.translate(_FORMATTING)
    if compact == text or len(compact) < 6 or _DIGITS.isdisjoint(compact):
        return None
    return compact


def luhn_valid(digits: str) -> bool:
    """True when *digits* (only 0-9) passes the Luhn checksum."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


_PRIMITIVES = (str, int, bool, type(None))


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """Convert *value* to JSON-compatible data. Nothing is dropped: unknown objects become a marker string."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return value if math.isfinite(value) else repr(value)  # 'nan' / 'inf' are not JSON
    if _depth > _MAX_DEPTH:
        return f"{semconv.UNSERIALISABLE_PREFIX}{kind.__name__}: nested too deep>"
    if kind is dict:
        out = {}
        for key, item in value.items():
            t = type(item)
            out[key if type(key) is str else str(key)] = (
                item if (t is str or t is int or t is bool or item is None) else to_jsonable(item, _depth + 1)
            )
        return out
    if kind is list or kind is tuple:
        return [item if type(item) in _PRIMITIVES else to_jsonable(item, _depth + 1) for item in value]
    return _to_jsonable_slow(value, _depth)


def _to_jsonable_slow(value: Any, _depth: int) -> Any:
    if isinstance(value, bool | int | str):  # subclasses (e.g. str enums) keep their value
        if isinstance(value, enum.Enum):
            return to_jsonable(value.value, _depth + 1)
        return bool(value) if isinstance(value, bool) else (int(value) if isinstance(value, int) else str(value))
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, _depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v, _depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, _depth + 1)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID, PurePath)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "base64:" + base64.b64encode(bytes(value)).decode()
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # pydantic v2
        try:
            return to_jsonable(model_dump(mode="json"), _depth + 1)
        except Exception:  # noqa: BLE001 - fall through to the generic marker
            pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)}
    for method in ("tolist", "item"):  # numpy arrays and scalars
        convert = getattr(value, method, None)
        if callable(convert):
            try:
                return to_jsonable(convert(), _depth + 1)
            except Exception:  # noqa: BLE001
                break
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):  # pandas
        try:
            return to_jsonable(to_dict(), _depth + 1)
        except Exception:  # noqa: BLE001
            pass
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not lose the record
        text = "repr failed"
    if len(text) > 200:
        text = text[:200] + "…"
    return f"{semconv.UNSERIALISABLE_PREFIX}{type(value).__name__}: {text}>"


def canonical_json_bytes(jsonable: Any) -> bytes:
    """The canonical JSON (UTF-8) of a value already converted by :func:`to_jsonable`: the bytes digested.

    Python's ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    encoded as UTF-8 (lone surrogates kept as their code units), so anyone can recompute a digest
    with the standard library. (orjson would be faster, but writes some numbers differently:
    ``3e-05`` as ``0.00003``.)
    """
    text = json.dumps(jsonable, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")


def canonical_json(value: Any) -> str:
    """Canonical JSON text of *value* (see :func:`canonical_json_bytes`): the form that is digested."""
    return canonical_json_bytes(to_jsonable(value)).decode("utf-8", "surrogatepass")


def valid_text(text: str) -> str:
    """*text* with lone surrogates (not UTF-8, refused by OTLP and ClickHouse) replaced by U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # one U+FFFD each
    return text


def _json_text(cleaned: Any) -> str:
    """Compact JSON text with sorted keys of an already-cleaned value, valid UTF-8 whatever it holds."""
    try:
        return orjson.dumps(cleaned, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:
        return valid_text(json.dumps(cleaned, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def truncate(text: str, limit: int) -> str:
    """Cut *text* to at most *limit* characters, ending with a marker that says how much was dropped."""
    if len(text) <= limit:
        return text
    marker = semconv.TRUNCATION_MARKER.format(dropped=len(text) - limit)
    keep = max(0, limit - len(marker))
    return text[:keep] + semconv.TRUNCATION_MARKER.format(dropped=len(text) - keep)


class PrivacyPolicy:
    """Compiled privacy settings. Build one per configuration; it is immutable and thread-safe."""

    def __init__(
        self,
        *,
        mode: str,
        deny_patterns: Iterable[str],
        allow_patterns: Iterable[str],
        key: bytes,
        scrub_free_text: bool = True,
        max_value_length: int = 4096,
        max_json_length: int = 65_536,
    ) -> None:
        if mode not in ("denylist", "allowlist"):
            raise ValueError(f"privacy_mode: {mode!r} is not 'denylist' or 'allowlist'")
        self.mode = mode
        self._deny = _compile("privacy_deny_patterns", deny_patterns)
        self._allow = _compile("privacy_allow_patterns", allow_patterns)
        if len(key) < 16:
            raise ValueError("hmac_key: must be at least 16 bytes")
        self._key = key
        block = hashlib.sha256(key).digest() if len(key) > _SHA256_BLOCK else key
        block = block.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        self.key_id = key_id(key)
        self.scrub_free_text = scrub_free_text
        self.max_value_length = max_value_length
        self.max_json_length = max_json_length
        self._key_cache: dict[str, bool] = {}
        self.key_plans: dict[str, tuple[str, bool, bool]] = {}

    @classmethod
    def from_settings(cls, settings: DecisionSettings) -> PrivacyPolicy:
        return cls(
            mode=settings.privacy_mode,
            deny_patterns=settings.deny_patterns,
            allow_patterns=settings.privacy_allow_patterns,
            key=resolve_hmac_key(settings),
            scrub_free_text=settings.scrub_free_text,
            max_value_length=settings.max_value_length,
            max_json_length=settings.max_json_length,
        )

    # --- keys ---------------------------------------------------------------------
    def is_masked_key(self, key: str) -> bool:
        """True when the policy protects the value under *key*."""
        cached = self._key_cache.get(key)
        if cached is not None:
            return cached
        snake = _snake_key(key)
        if self.mode == "denylist":
            masked = bool(self._deny and (self._deny.search(key) or (snake != key and self._deny.search(snake))))
        else:
            masked = not (self._allow and (self._allow.search(key) or (snake != key and self._allow.search(snake))))
        if len(self._key_cache) < 10_000:
            self._key_cache[key] = masked
        return masked

    def key_plan(self, key: str) -> tuple[str, bool, bool]:
        """How a mapping key is stored: (key after free-text scrubbing, whether that changed it, masked).

        A key can itself be an identifier (``{"jane@example.com": 3}``): it is scrubbed like text.
        Keys repeat from one decision to the next, so plans are cached.
        """
        plan = self.key_plans.get(key)
        if plan is None:
            stored = key
            if self.scrub_free_text:
                stored = scrub_identifiers(key)
            plan = (stored, stored != key, self.is_masked_key(stored))
            if len(self.key_plans) < 10_000:
                self.key_plans[key] = plan
        return plan

    # --- identifiers ----------------------------------------------------------------
    def hmac_hex(self, data: bytes) -> str:
        """HMAC-SHA256 (hex) of *data* under the key: ``hmac.digest(key, data, "sha256").hex()``, from the
        keyed inner and outer SHA-256 states (RFC 2104), which is faster, and for short data never
        releases the interpreter lock (``hmac.digest`` always does, and with another thread busy, such
        as the shipper, getting it back can cost more than the HMAC)."""
        inner = self._inner.copy()
        inner.update(data)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def pseudonymise(self, identifier: Any) -> str:
        """HMAC-SHA256 pseudonym (hex) of an identifier: stable for one key, irreversible without it."""
        return self.hmac_hex(str(identifier).encode("utf-8", "surrogatepass"))

    @property
    def signing_key(self) -> bytes:
        """The key integrity checkpoints are signed with (:func:`otel_decisions.integrity.sign`)."""
        return self._key

    def digest(self, raw: Any) -> str:
        """HMAC-SHA256 (hex) of the canonical JSON of *raw*: proves which inputs were used without revealing them."""
        return self.digest_jsonable(to_jsonable(raw))

    def digest_jsonable(self, jsonable: Any) -> str:
        """:meth:`digest` of a value already converted by :func:`to_jsonable`."""
        return self.hmac_hex(canonical_json_bytes(jsonable))

    def digest_bytes(self, canonical: bytes) -> str:
        """:meth:`digest` of a value given as its canonical JSON bytes (:func:`canonical_json_bytes`)."""
        return self.hmac_hex(canonical)

    def new_record(self) -> PrivacyRecord:
        """State for one decision: masked paths and values, so a value masked once is masked everywhere."""
        return PrivacyRecord(self)


class PrivacyRecord:
    """Applies a :class:`PrivacyPolicy` to the fields of one record and remembers what it masked."""

    __slots__ = ("_policy", "redacted", "_masked_values")

    def __init__(self, policy: PrivacyPolicy) -> None:
        self._policy = policy
        self.redacted: list[str] = []
        self._masked_values: set[str] = set()

    # A masked value is remembered (to scrub it elsewhere) only when long enough to be specific.
    _MIN_REMEMBERED = 4

    @property
    def masked_values(self) -> frozenset[str]:
        """The values masked so far in this record (as text, 4+ characters): scrubbed wherever they recur."""
        return frozenset(self._masked_values)

    def clean_mapping(self, value: Any, path: str) -> Any:
        """Return a JSON-able copy of *value* with protected keys masked (paths recorded under *path*)."""
        return self.clean_jsonable(to_jsonable(value), path)

    def clean_jsonable(self, value: Any, path: str) -> Any:
        """Mask protected keys of a value already converted by :func:`to_jsonable`."""
        kind = type(value)
        if kind is dict:
            out: dict[str, Any] = {}
            plans = self._policy.key_plans
            for key, item in value.items():
                plan = plans.get(key) or self._policy.key_plan(key)
                stored, key_scrubbed, masked = plan
                if key_scrubbed:
                    self.redacted.append(f"{path}.<key>" if path else "<key>")
                    while stored in out:
                        stored += "'"
                if masked:
                    self.redacted.append(f"{path}.{stored}" if path else stored)
                    self._remember(item)
                    out[stored] = _SENTINEL
                elif type(item) is dict or type(item) is list:
                    out[stored] = self.clean_jsonable(item, f"{path}.{stored}" if path else stored)
                else:
                    out[stored] = item
            return out
        if kind is list:
            return [
                self.clean_jsonable(item, f"{path}[{i}]") if type(item) in (dict, list) else item
                for i, item in enumerate(value)
            ]
        return value

    def _remember(self, value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                self._remember(item)
        elif isinstance(value, list):
            for item in value:
                self._remember(item)
        elif isinstance(value, (str, int)) and not isinstance(value, bool):
            text = str(value)
            if len(text) >= self._MIN_REMEMBERED:
                self._masked_values.add(text)
                compact = compact_form(text)
                if compact is not None:
                    self._masked_values.add(compact)  # "QQ 12 34 56 C" is also written "QQ123456C"

    def scrub_tree(self, value: Any, path: str) -> Any:
        """Scrub free text in every string leaf of an already-cleaned tree."""
        kind = type(value)
        if kind is str:
            if value == _SENTINEL:
                return value
            return self.scrub_text(value, path)
        if kind is dict:
            out = {}
            for key, item in value.items():
                t = type(item)
                if t is str:
                    if item != _SENTINEL:
                        scrubbed = self._scrub(item)
                        if scrubbed is not item and scrubbed != item:
                            self.redacted.append(f"{path}.{key}")
                        item = scrubbed
                elif t is dict or t is list:
                    item = self.scrub_tree(item, f"{path}.{key}")
                out[key] = item
            return out
        if kind is list:
            return [v if type(v) in _NUMBERS else self.scrub_tree(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    def _scrub(self, text: str) -> str:
        """*text* with values masked elsewhere in this record, then e-mail / SSN / phone / card patterns, masked."""
        for secret in self._masked_values:
            if secret in text:
                text = text.replace(secret, _SENTINEL)
        if self._policy.scrub_free_text:
            text = scrub_identifiers(text)
        return text

    def scrub_text(self, text: str, path: str) -> str:
        """Mask values masked elsewhere in this record, then e-mail / SSN / phone / card patterns."""
        scrubbed = self._scrub(text)
        if scrubbed is not text and scrubbed != text:
            self.redacted.append(path)
        return scrubbed

    def json_field(self, value: Any, path: str, *, jsonable: bool = False) -> str:
        """Clean, scrub, serialise and truncate *value* for a JSON attribute such as ``decision.inputs``.

        ``jsonable=True``: *value* was already converted by :func:`to_jsonable`.
        """
        value = value if jsonable else to_jsonable(value)
        if self._policy.mode == "allowlist" and type(value) is not dict and value is not None:
            # allow-list mode clears values by their key; a bare value has none, so it stays hidden
            self._remember(value)
            self.redacted.append(path)
            value = _SENTINEL
        cleaned = self.scrub_tree(self.clean_jsonable(value, path), path)
        return truncate(_json_text(cleaned), self._policy.max_json_length)

    def text_field(self, value: Any, path: str, index: int | None = None) -> str:
        """Scrub and truncate a free-text attribute such as ``decision.rationale`` (item *index* of a list field)."""
        text = value if type(value) is str else _plain_text(value)
        scrubbed = self._scrub(text)
        if scrubbed is not text and scrubbed != text:
            self.redacted.append(path if index is None else f"{path}[{index}]")
        return valid_text(truncate(scrubbed, self._policy.max_value_length))

    short_field = text_field
    """Scrub and truncate a short attribute (type, outcome, model, policy version): no field is exempt."""

    def mask_fields(
        self, fields: Iterable[tuple[str, str, FieldKind, Any]], *, learn_only: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """The one masking path of a record: every ``(attribute key, path, kind, value)`` through the
        policy, in order (inputs first, so values masked there are masked in every later field).

        ``None`` values and empty lists are left out. ``learn_only``: paths of LEARN fields whose
        masked paths are not reported in ``redacted`` (a review learns its decision's masked
        values, but the decision's redactions are the decision's). Returns the attributes to record.
        """
        out: dict[str, Any] = {}
        for key, path, kind, value in fields:
            if kind is FieldKind.LEARN and path in learn_only and value is not None:
                before = len(self.redacted)
                self.clean_jsonable(value, path)
                del self.redacted[before:]
                continue
            if value is None or (kind in _LIST_KINDS and not value):
                continue
            if kind is FieldKind.TEXT:
                out[key] = self.text_field(value, path)
            elif kind is FieldKind.TEXT_LIST:
                out[key] = [self.text_field(item, path, i) for i, item in enumerate(value)]
            elif kind is FieldKind.JSON:
                out[key] = self.json_field(value, path)
            elif kind is FieldKind.JSONABLE:
                out[key] = self.json_field(value, path, jsonable=True)
            elif kind is FieldKind.LEARN:
                self.clean_jsonable(value, path)  # not stored: learn what it masks for the other fields
            elif kind is FieldKind.PSEUDONYM:
                out[key] = self._policy.pseudonymise(value)
            else:
                out[key] = value  # FieldKind.VALUE: a validated number or flag, nothing to mask
        return out


class FieldKind(enum.Enum):
    """How :meth:`PrivacyRecord.mask_fields` treats one field."""

    TEXT = "text"
    """Free or short text: scrubbed (values masked elsewhere, patterns) and truncated."""
    TEXT_LIST = "text_list"
    JSON = "json"
    """A structured value: key policy, then scrubbing of every string leaf, serialised and truncated."""
    JSONABLE = "jsonable"
    """Like JSON, for a value already converted by :func:`to_jsonable`."""
    LEARN = "learn"
    """A JSON-able value not stored: only learn which values it masks."""
    PSEUDONYM = "pseudonym"
    """An identifier: replaced by its HMAC pseudonym."""
    VALUE = "value"
    """A validated number or flag, stored as it is."""


_LIST_KINDS = (FieldKind.TEXT_LIST,)


def _plain_text(value: Any) -> str:
    """*value* as an exact ``str``: an enum member is its value (``str(StrEnum.X)`` is 'Class.X' on 3.11)."""
    if type(value) is str:
        return value
    if isinstance(value, enum.Enum):
        return _plain_text(value.value)
    if isinstance(value, str):
        return str.__str__(value)
    return str(to_jsonable(value))


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s.\-/]+")


def _snake_key(key: str) -> str:
    """*key* in snake_case: ``nationalInsuranceNumber``, ``client-ip`` and ``Client IP`` as
    ``national_insurance_number``, ``client_ip`` and ``client_ip``."""
    return _SEPARATORS.sub("_", _CAMEL.sub("_", key)).lower()


def _compile(field: str, patterns: Iterable[str]) -> re.Pattern[str] | None:
    items = list(patterns)
    if not items:
        return None
    for pattern in items:
        if not isinstance(pattern, str):
            raise ValueError(f"{field}: every pattern must be a string, got {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{field}: invalid regular expression {pattern!r}: {exc}") from exc
    return re.compile("|".join(f"(?:{p})" for p in items), re.IGNORECASE)
