"""ClickHouse's HTTP interface over the embedded chDB database (``otel-decisions serve``).

One process owns the embedded database and answers the subset of ClickHouse's HTTP
interface that real clients use (clickhouse-connect's HTTP driver, clickhouse-go/v2 as
used by the collector's clickhouse exporter, curl). Several processes -- flows, the CLI,
a collector -- can then share one database through an ``http://`` DSN.

This is for one machine: development, tests and small sites. Production and
scale-out use ClickHouse server or a cluster; nothing here replicates, shards or
survives a disk failure.

What is served:

* ``GET`` and ``POST`` on ``/``; SQL in the ``query`` URL parameter, in the body, or
  split between them (the parameter first, then the body, as ClickHouse does).
* ``INSERT ... FORMAT <fmt>`` with the data after the statement, streamed into the
  engine (constant memory); plain or chunked transfer encoding; ``Content-Encoding``
  gzip/deflate/lz4/zstd; ClickHouse's own compressed-block framing
  (``decompress=1`` for request bodies, ``compress=1`` for responses, LZ4 with
  CityHash128 checksums) as clickhouse-go sends and expects it.
* ``param_<name>`` query parameters (bound by the engine itself, typed by the
  ``{name:Type}`` placeholder), settings as URL parameters, ``default_format``,
  ``database``, ``query_id``, ``session_id`` (sessions keep ``SET``/``USE`` and
  temporary tables; a session in use answers SESSION_IS_LOCKED like ClickHouse).
* ``/ping`` (and ``GET /`` without a query) answering ``Ok.``.
* HTTP basic auth, ``X-ClickHouse-User``/``X-ClickHouse-Key`` or ``user``/``password``
  parameters, checked against the configured credentials.
* Errors as ClickHouse sends them: an HTTP status from the error code,
  ``X-ClickHouse-Exception-Code`` and the ``Code: N. DB::Exception: ...`` text.
* The headers clients read: ``X-ClickHouse-Format``, ``-Timezone``,
  ``-Server-Display-Name``, ``-Query-Id``, ``-Summary``.
* Graceful shutdown: stop accepting, finish in-flight requests, close the engine.

``async_insert`` is accepted and ignored: every insert is committed before its
``200 OK``, which is what the no-loss delivery wants. A GET runs with ``readonly=2``
as on ClickHouse.

Example::

    from otel_decisions.serve import ChdbHttpServer

    with ChdbHttpServer("/tmp/db", port=0) as server:   # port 0: pick a free port
        import clickhouse_connect
        client = clickhouse_connect.get_client(dsn=server.url)
        client.command("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a")
"""

from __future__ import annotations

import base64
import gzip
import hmac
import ipaddress
import json
import logging
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from otel_decisions.errors import OtelDecisionsError

logger = logging.getLogger(__name__)

__all__ = ["ChdbHttpServer", "serve", "is_loopback"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8123
DISPLAY_NAME = "otel-decisions-chdb"

# --- ClickHouse error codes used here and their HTTP statuses ---------------------------
# (src/Common/ErrorCodes.cpp and HTTPHandler's exceptionCodeToHTTPStatus)
_ERR_BAD_ARGUMENTS = 36
_ERR_NOT_IMPLEMENTED = 48
_ERR_SYNTAX_ERROR = 62
_ERR_UNKNOWN_FORMAT = 73
_ERR_CANNOT_DECOMPRESS = 271
_ERR_CHECKSUM_DOESNT_MATCH = 40
_ERR_SESSION_NOT_FOUND = 372
_ERR_SESSION_IS_LOCKED = 373
_ERR_HTTP_LENGTH_REQUIRED = 381
_ERR_AUTHENTICATION_FAILED = 516
_ERR_UNKNOWN_EXCEPTION = 1002
_ERR_UNSUPPORTED_METHOD = 1
_ERR_ACCESS_DENIED = 497

_ERROR_NAMES = {
    _ERR_ACCESS_DENIED: "ACCESS_DENIED",
    _ERR_BAD_ARGUMENTS: "BAD_ARGUMENTS",
    _ERR_NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    _ERR_SYNTAX_ERROR: "SYNTAX_ERROR",
    _ERR_UNKNOWN_FORMAT: "UNKNOWN_FORMAT",
    _ERR_CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    _ERR_CHECKSUM_DOESNT_MATCH: "CHECKSUM_DOESNT_MATCH",
    _ERR_SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
    _ERR_SESSION_IS_LOCKED: "SESSION_IS_LOCKED",
    _ERR_HTTP_LENGTH_REQUIRED: "HTTP_LENGTH_REQUIRED",
    _ERR_AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
    _ERR_UNKNOWN_EXCEPTION: "UNKNOWN_EXCEPTION",
    _ERR_UNSUPPORTED_METHOD: "UNSUPPORTED_METHOD",
}

_STATUS_BY_CODE: dict[int, int] = {
    _ERR_ACCESS_DENIED: 403,
    **{code: 400 for code in (6, 25, 26, 27, 38, 41, 72, 117, 53, 62, 69, 70, 32, 36, 456, 457, 167, 168, 271, 40)},
    **{code: 404 for code in (60, 46, 47, 50, 56, 81, 115, 63, 73, 336, 78, 511)},
    193: 401,  # WRONG_PASSWORD
    194: 401,  # REQUIRED_PASSWORD
    516: 401,  # AUTHENTICATION_FAILED
    497: 403,  # ACCESS_DENIED
    164: 403,  # READONLY
    202: 413,  # QUERY_IS_TOO_LARGE
    48: 501,  # NOT_IMPLEMENTED
    381: 411,  # HTTP_LENGTH_REQUIRED
    372: 404,  # SESSION_NOT_FOUND
}

# URL parameters the HTTP layer consumes; everything else (bar param_*) is a setting.
_TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "query_id",
        "session_id",
        "session_timeout",
        "session_check",
        "compress",
        "decompress",
        "user",
        "password",
        "quota_key",
        "client_protocol_version",
        "buffer_size",
        "wait_end_of_query",
        "role",
        "stacktrace",
        # HTTP-only settings: this server does not send progress headers and decides
        # response compression itself, so they never reach the engine.
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "http_zlib_compression_level",
        "http_native_compression_disable_checksumming_on_decompress",
        "cancel_http_readonly_queries_on_client_close",
        # Inserts are synchronous: committed before the 200 OK (see module docstring).
        "async_insert",
        "wait_for_async_insert",
        "async_insert_busy_timeout_ms",
    }
)

_CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "tsv": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnames": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnamesandtypes": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
    "csvwithnames": "text/csv; charset=UTF-8; header=present",
    "json": "application/json; charset=UTF-8",
    "jsoncompact": "application/json; charset=UTF-8",
    "jsoneachrow": "application/x-ndjson; charset=UTF-8",
    "native": "application/octet-stream",
    "rowbinary": "application/octet-stream",
    "rowbinarywithnamesandtypes": "application/octet-stream",
    "arrow": "application/octet-stream",
    "parquet": "application/octet-stream",
}

_MAX_QUERY_BYTES = 256 * 1024 * 1024
_INSERT_CHUNK = 1024 * 1024
_CH_BLOCK = 1024 * 1024  # max_compress_block_size
_IDLE_KEEPALIVE_S = 30.0
_POLL_S = 0.2


class ClickHouseError(Exception):
    """An error answered the way ClickHouse answers it (code, name, message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def make(cls, code: int, text: str) -> ClickHouseError:
        name = _ERROR_NAMES.get(code, "UNKNOWN_EXCEPTION")
        return cls(code, f"Code: {code}. DB::Exception: {text}. ({name})")

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        text = str(exc).strip()
        match = re.search(r"Code: (\d+)\.", text)
        if match:
            return cls(int(match.group(1)), text[match.start() :])
        return cls.make(_ERR_UNKNOWN_EXCEPTION, text or type(exc).__name__)

    @property
    def status(self) -> int:
        return _STATUS_BY_CODE.get(self.code, 500)


# ======================================================================================
# ClickHouse compressed-block framing: CityHash128 (v1.0.2, as ClickHouse uses it),
# a streaming decoder for request bodies and an encoder for responses.
# ======================================================================================

_M64 = 0xFFFFFFFFFFFFFFFF
_K0 = 0xC3A5C85C97CB3127
_K1 = 0xB492B66FBE98F273
_K2 = 0x9AE16A3B2F90404F
_K3 = 0xC949D7C7509E6557
_KMUL = 0x9DDFEA08EB382D69
_u64 = struct.Struct("<Q").unpack_from
_u32 = struct.Struct("<I").unpack_from


def _rot(v: int, s: int) -> int:
    return v if s == 0 else ((v >> s) | (v << (64 - s))) & _M64


def _smix(v: int) -> int:
    return v ^ (v >> 47)


def _h16(u: int, v: int) -> int:
    a = ((u ^ v) * _KMUL) & _M64
    a ^= a >> 47
    b = ((v ^ a) * _KMUL) & _M64
    b ^= b >> 47
    return (b * _KMUL) & _M64


def _h0to16(s: bytes, off: int, n: int) -> int:
    if n > 8:
        a = _u64(s, off)[0]
        b = _u64(s, off + n - 8)[0]
        return _h16(a, _rot((b + n) & _M64, n)) ^ b
    if n >= 4:
        a = _u32(s, off)[0]
        return _h16((n + (a << 3)) & _M64, _u32(s, off + n - 4)[0])
    if n > 0:
        y = s[off] + (s[off + (n >> 1)] << 8)
        z = n + (s[off + n - 1] << 2)
        return (_smix(((y * _K2) ^ (z * _K3)) & _M64) * _K2) & _M64
    return _K2


def _weak32(s: bytes, off: int, a: int, b: int) -> tuple[int, int]:
    w, x, y, z = struct.unpack_from("<4Q", s, off)
    a = (a + w) & _M64
    b = _rot((b + a + z) & _M64, 21)
    c = a
    a = (a + x + y) & _M64
    b = (b + _rot(a, 44)) & _M64
    return (a + z) & _M64, (b + c) & _M64


def _murmur(s: bytes, off: int, n: int, lo: int, hi: int) -> tuple[int, int]:
    a, b = lo, hi
    if n <= 16:
        a = (_smix((a * _K1) & _M64) * _K1) & _M64
        c = (b * _K1 + _h0to16(s, off, n)) & _M64
        d = _smix((a + (_u64(s, off)[0] if n >= 8 else c)) & _M64)
    else:
        c = _h16((_u64(s, off + n - 8)[0] + _K1) & _M64, a)
        d = _h16((b + n) & _M64, (c + _u64(s, off + n - 16)[0]) & _M64)
        a = (a + d) & _M64
        left = n
        pos = off
        while True:
            a ^= (_smix((_u64(s, pos)[0] * _K1) & _M64) * _K1) & _M64
            a = (a * _K1) & _M64
            b ^= a
            c ^= (_smix((_u64(s, pos + 8)[0] * _K1) & _M64) * _K1) & _M64
            c = (c * _K1) & _M64
            d ^= c
            pos += 16
            left -= 16
            if left <= 16:
                break
    a = _h16(a, c)
    b = _h16(d, b)
    return a ^ b, _h16(b, a)


def _city128_seed(s: bytes, off: int, lo: int, hi: int) -> tuple[int, int]:
    n = len(s) - off
    if n < 128:
        return _murmur(s, off, n, lo, hi)
    x, y = lo, hi
    z = (n * _K1) & _M64
    v0 = (_rot(y ^ _K1, 49) * _K1 + _u64(s, off)[0]) & _M64
    v1 = (_rot(v0, 42) * _K1 + _u64(s, off + 8)[0]) & _M64
    w0 = (_rot((y + z) & _M64, 35) * _K1 + x) & _M64
    w1 = (_rot((x + _u64(s, off + 88)[0]) & _M64, 53) * _K1) & _M64
    pos = off
    end = len(s)
    while end - pos >= 128:
        for half in (0, 64):
            p = pos + half
            x = (_rot((x + y + v0 + _u64(s, p + 16)[0]) & _M64, 37) * _K1) & _M64
            y = (_rot((y + v1 + _u64(s, p + 48)[0]) & _M64, 42) * _K1) & _M64
            x ^= w1
            y ^= v0
            z = _rot(z ^ w0, 33)
            v0, v1 = _weak32(s, p, (v1 * _K1) & _M64, (x + w0) & _M64)
            w0, w1 = _weak32(s, p + 32, (z + w1) & _M64, y)
            z, x = x, z
        pos += 128
    y = (y + _rot(w0, 37) * _K0 + z) & _M64
    x = (x + _rot((v0 + z) & _M64, 49) * _K0) & _M64
    rest = end - pos
    i = 0
    while i < rest:
        i += 32
        y = (_rot((y - x) & _M64, 42) * _K0 + v1) & _M64
        w0 = (w0 + _u64(s, end - i + 16)[0]) & _M64
        x = (_rot(x, 49) * _K0 + w0) & _M64
        w0 = (w0 + v0) & _M64
        v0, v1 = _weak32(s, end - i, v0, v1)
    x = _h16(x, v0)
    y = _h16(y, w0)
    return (_h16((x + v1) & _M64, w1) + y) & _M64, _h16((x + w1) & _M64, (y + v1) & _M64)


def cityhash128(data: bytes) -> tuple[int, int]:
    """ClickHouse's CityHash128 (CityHash v1.0.2) of *data* as ``(low, high)``."""
    n = len(data)
    if n >= 16:
        return _city128_seed(data, 16, _u64(data, 0)[0] ^ _K3, _u64(data, 8)[0])
    if n >= 8:
        return _city128_seed(b"", 0, _u64(data, 0)[0] ^ ((n * _K0) & _M64), _u64(data, n - 8)[0] ^ _K1)
    return _city128_seed(data, 0, _K0, _K1)


_METHOD_NONE = 0x02
_METHOD_LZ4 = 0x82
_METHOD_ZSTD = 0x90


def ch_compress(data: bytes) -> bytes:
    """Frame *data* as ClickHouse compressed blocks (LZ4, 1 MiB each)."""
    import lz4.block

    out = bytearray()
    for start in range(0, max(len(data), 1), _CH_BLOCK):
        raw = data[start : start + _CH_BLOCK]
        if not raw:
            break
        packed = lz4.block.compress(raw, store_size=False)
        body = struct.pack("<BII", _METHOD_LZ4, len(packed) + 9, len(raw)) + packed
        lo, hi = cityhash128(body)
        out += struct.pack("<QQ", lo, hi) + body
    return bytes(out)


def ch_decompress_stream(chunks: Iterable[bytes], verify: bool = True) -> Iterator[bytes]:
    """Decode a stream of ClickHouse compressed blocks into the original bytes."""
    buf = bytearray()
    it = iter(chunks)
    exhausted = False
    while True:
        while len(buf) < 25 and not exhausted:
            try:
                buf += next(it)
            except StopIteration:
                exhausted = True
        if not buf:
            return
        if len(buf) < 25:
            raise ClickHouseError.make(_ERR_CANNOT_DECOMPRESS, "Cannot decompress: truncated block header")
        method, size, raw_size = struct.unpack_from("<BII", buf, 16)
        total = 16 + size
        if size < 9 or size > 1 << 30 or raw_size > 1 << 30:
            raise ClickHouseError.make(_ERR_CANNOT_DECOMPRESS, f"Cannot decompress: bad block sizes {size}/{raw_size}")
        while len(buf) < total and not exhausted:
            try:
                buf += next(it)
            except StopIteration:
                exhausted = True
        if len(buf) < total:
            raise ClickHouseError.make(_ERR_CANNOT_DECOMPRESS, "Cannot decompress: truncated block")
        block = bytes(buf[16:total])
        if verify:
            lo, hi = struct.unpack_from("<QQ", buf, 0)
            if cityhash128(block) != (lo, hi):
                raise ClickHouseError.make(
                    _ERR_CHECKSUM_DOESNT_MATCH, "Checksum doesn't match: corrupted data in a compressed block"
                )
        del buf[:total]
        payload = block[9:]
        if method == _METHOD_LZ4:
            import lz4.block

            yield lz4.block.decompress(payload, uncompressed_size=raw_size)
        elif method == _METHOD_ZSTD:
            from backports import zstd  # clickhouse-connect's dependency on Python < 3.14

            yield zstd.decompress(payload)
        elif method == _METHOD_NONE:
            yield payload
        else:
            raise ClickHouseError.make(_ERR_CANNOT_DECOMPRESS, f"Unknown compression method 0x{method:02x}")


# ======================================================================================
# Native output for a client protocol revision. ClickHouse writes Native over HTTP in
# the revision the client names (``client_protocol_version``, as clickhouse-go sends):
# each block then starts with BlockInfo and each column carries a "custom
# serialization" flag. chDB writes revision 0, so the blocks are re-framed here; that
# needs each column's byte length, hence a walker over the Native column encodings.
# ======================================================================================

_REVISION_WITH_CUSTOM_SERIALIZATION = 54454
_FIXED_WIDTH = {
    **dict.fromkeys(("UInt8", "Int8", "Bool", "Enum8", "Nothing"), 1),
    **dict.fromkeys(("UInt16", "Int16", "Date", "Enum16", "BFloat16"), 2),
    **dict.fromkeys(("UInt32", "Int32", "Float32", "Date32", "DateTime", "IPv4", "Decimal32", "Time"), 4),
    **dict.fromkeys(("UInt64", "Int64", "Float64", "DateTime64", "Decimal64", "Time64"), 8),
    **dict.fromkeys(("UInt128", "Int128", "UUID", "IPv6", "Decimal128"), 16),
    **dict.fromkeys(("UInt256", "Int256", "Decimal256"), 32),
}


@dataclass
class _Type:
    name: str
    args: list[_Type] = field(default_factory=list)
    raw_args: list[str] = field(default_factory=list)


def _split_type_args(text: str) -> list[str]:
    parts, depth, start, quote = [], 0, 0, ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _parse_type(text: str) -> _Type:
    text = text.strip()
    paren = text.find("(")
    if paren < 0:
        return _Type(text)
    name, inner = text[:paren].strip(), text[paren + 1 : text.rindex(")")]
    raw = _split_type_args(inner)
    node = _Type(name, raw_args=raw)
    if name in ("Nullable", "LowCardinality", "Array"):
        node.args = [_parse_type(raw[0])]
    elif name == "Map":
        node.args = [_parse_type(raw[0]), _parse_type(raw[1])]
    elif name == "Tuple":
        # named elements: "a String"; unnamed: "String"
        node.args = [
            _parse_type(part.split(None, 1)[1] if re.match(r"^[A-Za-z_`][^\s(]*\s+[A-Z]", part) else part)
            for part in raw
        ]
    return node


class _NativeWalker:
    """Finds where each column's bytes end in a revision-0 Native stream."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varint(self) -> int:
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    def string(self) -> bytes:
        size = self.varint()
        value = self.data[self.pos : self.pos + size]
        self.pos += size
        return value

    def u64(self) -> int:
        value = _u64(self.data, self.pos)[0]
        self.pos += 8
        return value

    def prefix(self, node: _Type) -> None:
        if node.name == "LowCardinality":
            self.u64()  # key serialization version
            self.prefix(node.args[0])
        elif node.name in ("Nullable", "Array"):
            self.prefix(node.args[0])
        elif node.name == "Map":
            self.prefix(node.args[0])
            self.prefix(node.args[1])
        elif node.name == "Tuple":
            for arg in node.args:
                self.prefix(arg)

    def skip(self, node: _Type, rows: int) -> None:
        name = node.name
        if rows == 0:
            return
        width = _FIXED_WIDTH.get(name)
        if width is not None:
            self.pos += width * rows
        elif name == "Decimal":
            precision = int(node.raw_args[0])
            self.pos += rows * (4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32)
        elif name == "FixedString":
            self.pos += rows * int(node.raw_args[0])
        elif name in ("String", "JSONString"):
            for _ in range(rows):
                size = self.varint()  # read first: `pos += varint()` would add to the old pos
                self.pos += size
        elif name == "Nullable":
            self.pos += rows
            self.skip(node.args[0], rows)
        elif name in ("Array", "Map"):
            self.pos += 8 * (rows - 1)
            total = self.u64()
            if name == "Array":
                self.skip(node.args[0], total)
            else:
                self.skip(node.args[0], total)
                self.skip(node.args[1], total)
        elif name == "Tuple":
            for arg in node.args:
                self.skip(arg, rows)
        elif name == "LowCardinality":
            flags = self.u64()
            if flags & (1 << 8):
                raise ClickHouseError.make(_ERR_NOT_IMPLEMENTED, "LowCardinality with a global dictionary in Native")
            if flags & (1 << 9):
                keys = self.u64()
                inner = node.args[0]
                self.skip(inner.args[0] if inner.name == "Nullable" else inner, keys)
            count = self.u64()
            self.pos += count * (1, 2, 4, 8)[flags & 0xFF]
        else:
            raise ClickHouseError.make(
                _ERR_NOT_IMPLEMENTED,
                f"Native output of type {name} for a client protocol revision is not supported by otel-decisions serve; "
                "select it as String or use RowBinary/TabSeparated",
            )


def native_for_revision(data: bytes, revision: int) -> bytes:
    """Re-frame revision-0 Native blocks for a client speaking *revision* (> 0)."""
    if revision <= 0:
        return data
    walker = _NativeWalker(data)
    out = bytearray()
    custom_flag = revision >= _REVISION_WITH_CUSTOM_SERIALIZATION
    while walker.pos < len(data):
        out += b"\x01\x00\x02\xff\xff\xff\xff\x00"  # BlockInfo: is_overflows=0, bucket_num=-1, end
        start = walker.pos
        columns = walker.varint()
        rows = walker.varint()
        out += data[start : walker.pos]
        for _ in range(columns):
            start = walker.pos
            walker.string()
            type_name = walker.string().decode()
            out += data[start : walker.pos]
            if custom_flag:
                out += b"\x00"
            start = walker.pos
            if rows:
                node = _parse_type(type_name)
                walker.prefix(node)
                walker.skip(node, rows)
            out += data[start : walker.pos]
    return bytes(out)


# ======================================================================================
# HTTP Content-Encoding
# ======================================================================================


def _content_decoder(encoding: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        yield from chunks
        return
    if encoding in ("gzip", "deflate", "x-gzip"):
        dec = zlib.decompressobj(wbits=47)  # auto-detect gzip or zlib header
        for chunk in chunks:
            yield dec.decompress(chunk)
        yield dec.flush()
        return
    if encoding == "lz4":
        import lz4.frame

        dec = lz4.frame.LZ4FrameDecompressor()
        for chunk in chunks:
            while chunk:
                yield dec.decompress(chunk)
                chunk = dec.unused_data if dec.eof else b""
                if dec.eof:
                    dec = lz4.frame.LZ4FrameDecompressor()
        return
    if encoding == "zstd":
        from backports import zstd

        zdec = zstd.ZstdDecompressor()
        for chunk in chunks:
            while chunk:
                yield zdec.decompress(chunk)
                chunk = zdec.unused_data if zdec.eof else b""
                if zdec.eof:
                    zdec = zstd.ZstdDecompressor()
        return
    raise ClickHouseError.make(_ERR_NOT_IMPLEMENTED, f"Unknown HTTP Content-Encoding {encoding!r}")


def _content_encode(accept: str, data: bytes) -> tuple[str | None, bytes]:
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()]
    for name in offered:
        if name == "gzip":
            return "gzip", gzip.compress(data, compresslevel=3)
        if name == "deflate":
            return "deflate", zlib.compress(data, 3)
        if name == "lz4":
            import lz4.frame

            return "lz4", lz4.frame.compress(data)
        if name == "zstd":
            from backports import zstd

            return "zstd", zstd.compress(data)
    return None, data


# ======================================================================================
# SQL scanning: where an INSERT's data starts, and the output format of a query.
# ======================================================================================

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _scan_top_level_words(text: str) -> Iterator[tuple[str, int, int]]:
    """Yield (UPPER word, start, end) for identifiers outside quotes, comments and parentheses."""
    i, n, depth = 0, len(text), 0
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            j = i + 1
            while j < n:
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif ch == "-" and text.startswith("--", i) or ch == "#" and text.startswith("#!", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif ch == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif ch in "([{":
            depth += 1
            i += 1
        elif ch in ")]}":
            depth -= 1
            i += 1
        elif ch.isalpha() or ch == "_":
            match = _WORD.match(text, i)
            assert match is not None
            if depth == 0:
                yield match.group(0).upper(), match.start(), match.end()
            i = match.end()
        else:
            i += 1


@dataclass
class _InsertSplit:
    statement: str  # "INSERT INTO t (cols)" without the FORMAT clause
    fmt: str
    data_offset: int  # index in the scanned text where the data starts


def _split_insert(text: str) -> _InsertSplit | None:
    """For ``INSERT ... FORMAT fmt <data>`` return the statement, format and data offset.

    ``None`` when *text* is not such an insert (``VALUES`` and ``SELECT`` inserts are
    ordinary queries) or the format name is not complete yet.
    """
    words = _scan_top_level_words(text)
    first = next(words, None)
    if first is None or first[0] != "INSERT":
        return None
    for word, start, end in words:
        if word in ("VALUES", "SELECT", "WITH", "FROM"):  # FROM INFILE is a query too
            return None
        if word == "FORMAT":
            match = re.compile(r"\s+([A-Za-z0-9_]+)").match(text, end)
            if match is None or match.end() >= len(text):
                return None  # the format name may continue in the next bytes
            data = match.end()
            # ClickHouse: data starts after spaces/tabs and at most one line feed.
            while data < len(text) and text[data] in " \t\f":
                data += 1
            if data < len(text) and text[data] == "\r":
                data += 1
            if data < len(text) and text[data] == "\n":
                data += 1
            return _InsertSplit(text[:start].rstrip(), match.group(1), data)
    return None


# Table functions, engines and clauses that reach outside the database: files (the HMAC key lives
# next to the data), URLs, other servers, programs. The front end serves only the decision store.
_OUTSIDE_WORLD = re.compile(
    r"""(?ix)
    (?<![\w.$])(?:file|fileCluster|url|urlCluster|s3\w*|gcs|hdfs\w*|azureBlobStorage\w*|remote|remoteSecure
        |cluster|clusterAllReplicas|mysql|postgresql|sqlite|mongodb|redis|jdbc|odbc|executable|iceberg\w*
        |deltaLake\w*|hudi\w*|arrowFlight|python|paimon\w*)\s*\(
    | \bINTO\s+OUTFILE\b
    | \bFROM\s+INFILE\b
    | \bCREATE\s+(?:OR\s+REPLACE\s+)?DICTIONARY\b
    | \bENGINE\s*=\s*(?:File|URL|S3\w*|HDFS|MySQL|PostgreSQL|SQLite|MongoDB|Redis|JDBC|ODBC|Kafka|RabbitMQ
        |NATS|AzureQueue|AzureBlobStorage|Iceberg\w*|DeltaLake|Hudi|Executable|ExecutablePool|Distributed)\b
    | \bSYSTEM\s+(?:SHUTDOWN|KILL)\b
    """
)


def _sql_skeleton(sql: str) -> str:
    """*sql* with comments removed, string literals emptied and quoted identifiers unquoted.

    Quote-aware, so a comment marker inside a string cannot hide what follows it, and text inside
    a string literal (a rationale mentioning "file(") is not mistaken for SQL.
    """
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char == "'":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == "'":
                    if j + 1 < n and sql[j + 1] == "'":
                        j += 2
                        continue
                    break
                j += 1
            out.append("''")
            i = j + 1
        elif char in '"`':
            j = sql.find(char, i + 1)
            j = n if j == -1 else j
            out.append(sql[i + 1 : j])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            out.append(" ")
            i = n if j == -1 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            out.append(" ")
            i = n if j == -1 else j + 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def reject_outside_world(statement: str) -> None:
    """Raise ACCESS_DENIED for SQL that would read or write outside the database (files, URLs, servers)."""
    match = _OUTSIDE_WORLD.search(_sql_skeleton(statement))
    if match:
        raise ClickHouseError.make(
            _ERR_ACCESS_DENIED,
            f"otel-decisions serve does not allow {match.group(0).strip()!r}: it serves the decision store only "
            "(no files, URLs, programs or other servers); use ClickHouse server for that",
        )


def _is_insert(text: str) -> bool:
    first = next(_scan_top_level_words(text), None)
    return first is not None and first[0] == "INSERT"


def _output_format(text: str, default: str) -> str:
    """The format a query's result comes in: its last top-level ``FORMAT name``, else *default*."""
    fmt = default
    words = list(_scan_top_level_words(text))
    for (word, _start, _end), following in zip(words, words[1:]):
        if word == "FORMAT":
            fmt = text[following[1] : following[2]]
    return fmt


# ======================================================================================
# The engine: chDB, one per process; a short-lived handle per request, one per session.
# ======================================================================================


@dataclass
class _Session:
    conn: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    timeout_s: float = 60.0
    last_used: float = field(default_factory=time.monotonic)


@dataclass
class _Outcome:
    body: bytes
    fmt: str | None
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_ns: int = 0


class _Engine:
    """Owns chDB for this process. Handles are cheap (~0.1 ms) and independent:
    each request gets its own, so SET/USE never leak between clients, and queries on
    different handles run concurrently (bounded by *max_concurrency*)."""

    def __init__(self, path: Path, max_concurrency: int) -> None:
        import chdb

        self._chdb = chdb
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._main = chdb.connect(str(path))
        except Exception as exc:
            raise OtelDecisionsError(
                f"cannot open the embedded database at {path}: {exc}. Another process may own it "
                "(one process per data path): stop it, or point --dsn at another directory"
            ) from exc
        row = self._main.query("SELECT version(), timezone()", "TabSeparated").bytes().decode().strip().split("\t")
        self.version, self.timezone = row[0], row[1]
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        self._closed = False

    # -- handles -------------------------------------------------------------------------
    def _open(self) -> Any:
        if self._closed:
            raise ClickHouseError.make(_ERR_UNKNOWN_EXCEPTION, "Server is shutting down")
        return self._chdb.connect(str(self.path))

    def acquire(self, session_id: str | None, timeout_s: float, check: bool) -> tuple[Any, Callable[[], None]]:
        """A handle for one request and the function that releases it."""
        if not session_id:
            conn = self._open()
            return conn, conn.close
        with self._sessions_lock:
            self._expire_sessions()
            session = self._sessions.get(session_id)
            if session is None:
                if check:
                    raise ClickHouseError.make(_ERR_SESSION_NOT_FOUND, f"Session {session_id} not found")
                session = _Session(self._open(), timeout_s=timeout_s)
                self._sessions[session_id] = session
            if not session.lock.acquire(blocking=False):
                raise ClickHouseError.make(
                    _ERR_SESSION_IS_LOCKED, f"Session {session_id} is locked by a concurrent client"
                )
            session.timeout_s = timeout_s

        def release() -> None:
            session.last_used = time.monotonic()
            session.lock.release()

        return session.conn, release

    def _expire_sessions(self) -> None:
        now = time.monotonic()
        for key, session in list(self._sessions.items()):
            if now - session.last_used > session.timeout_s and session.lock.acquire(blocking=False):
                del self._sessions[key]
                session.conn.close()
                session.lock.release()

    # -- execution -----------------------------------------------------------------------
    def _prepare(self, conn: Any, database: str | None, settings: dict[str, str], persistent: bool) -> list[str]:
        """Apply *database* and *settings*; return statements that restore a session."""
        restore: list[str] = []
        if database:
            if persistent:
                current = conn.query("SELECT currentDatabase()", "TabSeparated").bytes().decode().strip()
                restore.append(f"USE {_quote_ident(current)}")
            conn.query(f"USE {_quote_ident(database)}", "TabSeparated")
        for name, value in settings.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ClickHouseError.make(_ERR_BAD_ARGUMENTS, f"Invalid setting name {name!r}")
            if persistent:
                previous = conn.query(f"SELECT toString(getSetting('{name}'))", "TabSeparated").bytes().decode()
                restore.append(f"SET {name} = {_quote_literal(previous.rstrip(chr(10)))}")
            conn.query(f"SET {name} = {_quote_literal(value)}", "TabSeparated")
        return restore

    def run(
        self,
        conn: Any,
        persistent: bool,
        sql: str,
        fmt: str,
        params: dict[str, str],
        database: str | None,
        settings: dict[str, str],
    ) -> _Outcome:
        with self._slots:
            restore: list[str] = []
            try:
                restore = self._prepare(conn, database, settings, persistent)
                started = time.perf_counter_ns()
                result = conn.query(sql, fmt, params=params)
                return _Outcome(
                    body=result.bytes() or b"",
                    fmt=fmt,
                    read_rows=result.rows_read(),
                    read_bytes=result.bytes_read(),
                    written_rows=result.rows_written(),
                    written_bytes=result.bytes_written(),
                    elapsed_ns=time.perf_counter_ns() - started,
                )
            except ClickHouseError:
                raise
            except Exception as exc:
                raise ClickHouseError.from_engine(exc) from None
            finally:
                self._restore(conn, restore)

    def insert(
        self,
        conn: Any,
        persistent: bool,
        statement: str,
        fmt: str,
        data: Iterable[bytes],
        database: str | None,
        settings: dict[str, str],
    ) -> _Outcome:
        """Stream *data* (FORMAT-encoded chunks) into ``statement`` and commit it."""
        with self._slots:
            restore: list[str] = []
            try:
                restore = self._prepare(conn, database, settings, persistent)
                started = time.perf_counter_ns()
                inserter = conn.send_insert(statement, fmt)
                try:
                    pending = bytearray()
                    for chunk in data:
                        pending += chunk
                        if len(pending) >= _INSERT_CHUNK:
                            inserter.append(bytes(pending))
                            pending.clear()
                    if pending:
                        inserter.append(bytes(pending))
                    result = inserter.finish()
                except BaseException:
                    inserter.cancel()
                    raise
                return _Outcome(
                    body=b"",
                    fmt=None,
                    written_rows=result.rows_written,
                    written_bytes=result.bytes_written,
                    elapsed_ns=time.perf_counter_ns() - started,
                )
            except ClickHouseError:
                raise
            except Exception as exc:
                raise ClickHouseError.from_engine(exc) from None
            finally:
                self._restore(conn, restore)

    @staticmethod
    def _restore(conn: Any, statements: list[str]) -> None:
        for statement in reversed(statements):
            try:
                conn.query(statement, "TabSeparated")
            except Exception:  # a session whose restore failed keeps running; log why
                logger.warning("serve: could not restore session state with %r", statement, exc_info=True)

    def close(self) -> None:
        """Close every session and the engine (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with self._sessions_lock:
            for session in self._sessions.values():
                try:
                    session.conn.close()
                except Exception:
                    logger.debug("serve: closing a session handle failed", exc_info=True)
            self._sessions.clear()
        self._main.close()


def _quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ======================================================================================
# HTTP
# ======================================================================================


class _BodyReader:
    """The request body as an iterator of raw chunks (Content-Length or chunked)."""

    def __init__(self, rfile: Any, headers: Any) -> None:
        self._rfile = rfile
        self._chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        length = headers.get("Content-Length")
        self._remaining = int(length) if length is not None and not self._chunked else (None if self._chunked else 0)
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        if self._done:
            return
        if self._chunked:
            while True:
                line = self._rfile.readline(65537)
                if not line:
                    raise ClickHouseError.make(_ERR_CANNOT_DECOMPRESS, "Unexpected end of chunked body")
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                left = size
                while left:
                    data = self._rfile.read(min(left, _INSERT_CHUNK))
                    if not data:
                        raise ClickHouseError.make(_ERR_CANNOT_DECOMPRESS, "Unexpected end of chunked body")
                    left -= len(data)
                    yield data
                self._rfile.readline(3)
        else:
            while self._remaining:
                data = self._rfile.read(min(self._remaining, _INSERT_CHUNK))
                if not data:
                    raise ClickHouseError.make(_ERR_CANNOT_DECOMPRESS, "Unexpected end of request body")
                self._remaining -= len(data)
                yield data
        self._done = True

    def drain(self) -> None:
        for _ in self:
            pass


class _PeekableChunks:
    """Chunks with look-ahead: pull until a prefix decides the statement, then stream the rest."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self.head = b""
        self.exhausted = False

    def pull(self) -> bool:
        try:
            self.head += next(self._it)
            return True
        except StopIteration:
            self.exhausted = True
            return False

    def rest(self, offset: int) -> Iterator[bytes]:
        if offset < len(self.head):
            yield self.head[offset:]
        yield from self._it


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("serve %s - " + format, self.address_string(), *args)

    # Keep-alive connections wait here between requests; on shutdown an idle one closes.
    _served = 0

    def handle_one_request(self) -> None:
        if not self._wait_for_request(first=self._served == 0):
            self.close_connection = True
            return
        self.server.track(+1)
        try:
            super().handle_one_request()
        finally:
            self.server.track(-1)
            self._served += 1
        if self.server.draining:
            self.close_connection = True

    def _wait_for_request(self, first: bool) -> bool:
        sock = self.connection
        try:
            sock.settimeout(0)
            try:
                if self.rfile.peek(1):
                    return True
            except (BlockingIOError, OSError):
                pass
            finally:
                sock.settimeout(None)
        except OSError:
            return False
        idle_since = time.monotonic()
        # A new connection gets its first request read even while draining (it was
        # accepted before the listener closed); an idle keep-alive one just closes.
        grace_s = 2.0 if first else 0.0
        while not self.server.draining or time.monotonic() - idle_since < grace_s:
            readable, _, _ = select.select([sock], [], [], _POLL_S)
            if readable:
                return True
            if time.monotonic() - idle_since > _IDLE_KEEPALIVE_S:
                return False
        return False

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        query_id = ""
        compress_out = False
        body = _BodyReader(self.rfile, self.headers)
        try:
            parts = urlsplit(self.path)
            params: dict[str, str] = {}
            for key, value in parse_qsl(parts.query, keep_blank_values=True):
                params[key] = value
            compress_out = params.get("compress") == "1"
            query_id = params.get("query_id") or str(uuid.uuid4())
            path = parts.path or "/"
            if path in ("/ping", "/replicas_status") or (
                path == "/" and self.command in ("GET", "HEAD") and "query" not in params
            ):
                body.drain()
                self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
                return
            if path != "/":
                body.drain()
                raise ClickHouseError.make(_ERR_BAD_ARGUMENTS, f"There is no handle {path}")
            if self.command not in ("GET", "POST"):  # HEAD only answers health checks
                body.drain()
                raise ClickHouseError.make(_ERR_UNSUPPORTED_METHOD, f"Unsupported HTTP method {self.command}")
            self._check_origin()
            self._authenticate(params)
            if "multipart/form-data" in self.headers.get("Content-Type", ""):
                body.drain()
                raise ClickHouseError.make(_ERR_NOT_IMPLEMENTED, "External tables (multipart/form-data) are not supported")
            outcome = self._execute(params, body, query_id)
            payload = outcome.body
            revision = int(params.get("client_protocol_version") or 0)
            if revision and outcome.fmt and outcome.fmt.lower() == "native" and payload:
                payload = native_for_revision(payload, revision)
            headers = {
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Summary": json.dumps(
                    {
                        "read_rows": str(outcome.read_rows),
                        "read_bytes": str(outcome.read_bytes),
                        "written_rows": str(outcome.written_rows),
                        "written_bytes": str(outcome.written_bytes),
                        "total_rows_to_read": str(outcome.read_rows),
                        "result_bytes": str(len(payload)),
                        "elapsed_ns": str(outcome.elapsed_ns),
                    },
                    separators=(",", ":"),
                ),
            }
            if outcome.fmt:
                headers["X-ClickHouse-Format"] = outcome.fmt
                headers["Content-Type"] = _CONTENT_TYPES.get(outcome.fmt.lower(), "text/plain; charset=UTF-8")
            else:
                headers["Content-Type"] = "text/plain; charset=UTF-8"
            if compress_out:
                payload = ch_compress(payload)
            elif params.get("enable_http_compression") == "1" and self.headers.get("Accept-Encoding"):
                encoding, payload = _content_encode(self.headers["Accept-Encoding"], payload)
                if encoding:
                    headers["Content-Encoding"] = encoding
            self._send(200, payload, headers)
        except ClickHouseError as exc:
            self._send_error(exc, query_id, compress_out, body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as exc:  # never leave a client without an answer
            logger.exception("serve: unexpected error")
            self._send_error(ClickHouseError.make(_ERR_UNKNOWN_EXCEPTION, str(exc)), query_id, compress_out, body)

    # -- auth ---------------------------------------------------------------------------
    def _check_origin(self) -> None:
        """Refuse browsers (CSRF from a web page) and, on loopback, foreign Host names (DNS rebinding).

        ClickHouse clients (clickhouse-connect, the collector's Go driver) send neither an Origin
        nor Sec-Fetch-* headers; a browser always does on a cross-site request.
        """
        if "Origin" in self.headers or "Sec-Fetch-Site" in self.headers or "Sec-Fetch-Mode" in self.headers:
            raise ClickHouseError.make(_ERR_ACCESS_DENIED, "requests from web browsers are refused")
        if self.server.loopback_only:
            host = (self.headers.get("Host") or "").strip()
            name = host[1 : host.find("]")] if host.startswith("[") else host.split(":")[0]
            if host and not is_loopback(name):
                raise ClickHouseError.make(_ERR_ACCESS_DENIED, f"Host {host!r} is not this machine")

    def _authenticate(self, params: dict[str, str]) -> None:
        user, password = "default", ""
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
            except ValueError:
                raise ClickHouseError.make(_ERR_AUTHENTICATION_FAILED, "Malformed Authorization header") from None
        elif "X-ClickHouse-User" in self.headers:
            user = self.headers.get("X-ClickHouse-User", "default")
            password = self.headers.get("X-ClickHouse-Key", "")
        elif "user" in params:
            user, password = params["user"], params.get("password", "")
        expected = self.server.credentials
        if expected is None:
            return
        ok_user = hmac.compare_digest(user.encode(), expected[0].encode())
        ok_password = hmac.compare_digest(password.encode(), expected[1].encode())
        if not (ok_user and ok_password):
            raise ClickHouseError.make(
                _ERR_AUTHENTICATION_FAILED,
                f"{user}: Authentication failed: password is incorrect, or there is no user with such name",
            )

    # -- execution ----------------------------------------------------------------------
    def _execute(self, params: dict[str, str], body: _BodyReader, query_id: str) -> _Outcome:
        engine = self.server.engine
        settings = {
            key: value for key, value in params.items() if key not in _TRANSPORT_PARAMS and not key.startswith("param_")
        }
        if self.command == "GET":
            settings["readonly"] = "2"  # as ClickHouse: a GET never writes, whatever the URL asks
        query_params = {key[6:]: value for key, value in params.items() if key.startswith("param_")}
        default_format = params.get("default_format") or "TabSeparated"
        database = params.get("database") or None

        chunks: Iterable[bytes] = body
        if params.get("decompress") == "1":
            chunks = ch_decompress_stream(
                chunks, verify=params.get("http_native_compression_disable_checksumming_on_decompress") != "1"
            )
        encoding = self.headers.get("Content-Encoding", "")
        if encoding:
            chunks = _content_decoder(encoding, chunks)

        head = params.get("query", "")
        if head:
            head += "\n"  # ClickHouse joins the query parameter and the body with a line feed
        stream = _PeekableChunks(chunks)
        stream.head = head.encode()
        split: _InsertSplit | None = None
        # Pull body bytes until the statement shows whether data follows it. The scan
        # runs on latin-1 text so character offsets are byte offsets.
        while True:
            text = stream.head[:65536].decode("latin-1")
            stripped = text.lstrip()
            if len(stripped) > 6 and not _is_insert(stripped):
                break  # an ordinary query: read it whole below
            split = _split_insert(text)
            if split is not None or stream.exhausted or len(stream.head) > 65536:
                break
            stream.pull()
        session_id = params.get("session_id") or None
        timeout_s = float(params.get("session_timeout") or 60)
        conn, release = engine.acquire(session_id, timeout_s, params.get("session_check") == "1")
        try:
            if split is not None:
                statement = split.statement.encode("latin-1").decode("utf-8")
                reject_outside_world(statement)
                return engine.insert(
                    conn, session_id is not None, statement, split.fmt, stream.rest(split.data_offset), database, settings
                )
            while not stream.exhausted:
                stream.pull()
                if len(stream.head) > _MAX_QUERY_BYTES:
                    raise ClickHouseError.make(202, "Query is too large")
            sql = stream.head.decode("utf-8", errors="strict").strip()
            if not sql:
                raise ClickHouseError.make(_ERR_SYNTAX_ERROR, "Empty query")
            reject_outside_world(sql)
            fmt = _output_format(sql, default_format)
            outcome = engine.run(conn, session_id is not None, sql, default_format, query_params, database, settings)
            outcome.fmt = fmt
            return outcome
        except UnicodeDecodeError as exc:
            raise ClickHouseError.make(_ERR_SYNTAX_ERROR, f"Query is not valid UTF-8: {exc}") from None
        finally:
            release()

    # -- responses ----------------------------------------------------------------------
    def _send_error(self, exc: ClickHouseError, query_id: str, compress_out: bool, body: _BodyReader) -> None:
        try:
            body.drain()
        except Exception:
            self.close_connection = True  # body unreadable: the connection cannot be reused
        text = exc.message
        if "(version " not in text:
            text = f"{text} (version {self.server.engine.version} ({DISPLAY_NAME}))"
        payload = (text + "\n").encode("utf-8", errors="replace")
        if compress_out:
            payload = ch_compress(payload)
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(exc.code),
            "X-ClickHouse-Query-Id": query_id,
        }
        if exc.code == _ERR_AUTHENTICATION_FAILED:
            headers["WWW-Authenticate"] = 'Basic realm="ClickHouse server HTTP API"'
        self._send(exc.status, payload, headers)

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("X-ClickHouse-Server-Display-Name", DISPLAY_NAME)
            self.send_header("X-ClickHouse-Timezone", self.server.engine.timezone)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            if self.server.draining:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Keep-Alive", f"timeout={int(_IDLE_KEEPALIVE_S)}")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (ConnectionError, TimeoutError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # joined explicitly through the in-flight counter
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], engine: _Engine, credentials: tuple[str, str] | None, ipv6: bool
    ) -> None:
        if ipv6:
            self.address_family = socket.AF_INET6
        self.engine = engine
        self.credentials = credentials
        self.loopback_only = is_loopback(address[0])
        self.draining = False
        self._inflight = 0
        self._inflight_cv = threading.Condition()
        super().__init__(address, _Handler)

    def track(self, delta: int) -> None:
        with self._inflight_cv:
            self._inflight += delta
            self._inflight_cv.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._inflight_cv:
            while self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._inflight_cv.wait(left)
        return True


def is_loopback(host: str) -> bool:
    """True when *host* names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _path_from_dsn(dsn: str) -> Path:
    if not dsn.startswith("chdb://"):
        raise OtelDecisionsError(
            f"--dsn {dsn!r}: serve owns an embedded database, give chdb:///path/to/dir "
            "(an http:// DSN is what clients use to reach this server)"
        )
    location = urlsplit(dsn).path if dsn.startswith("chdb:///") else dsn[len("chdb://") :].split("?")[0]
    if not location or location in ("memory", ":memory:"):
        raise OtelDecisionsError(f"--dsn {dsn!r}: serve needs an on-disk path, e.g. chdb:///var/lib/otel-decisions/chdb")
    return Path(location)


class ChdbHttpServer:
    """ClickHouse's HTTP interface over an embedded chDB database at *path*.

    ``start()`` binds and serves in a background thread; ``stop()`` stops accepting,
    lets in-flight requests finish and closes the engine. Also a context manager.
    Binding anywhere but loopback needs ``allow_remote=True`` and credentials.
    """

    def __init__(
        self,
        path: str | Path,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        user: str | None = None,
        password: str | None = None,
        allow_remote: bool = False,
        max_concurrency: int = 8,
    ) -> None:
        text = str(path)
        self.path = _path_from_dsn(text) if text.startswith("chdb:") else Path(text)
        if not is_loopback(host):
            if not allow_remote:
                raise OtelDecisionsError(
                    f"--host {host}: serve binds to loopback only by default (it is for one machine); "
                    "pass --allow-remote with --user/--password to listen on other addresses"
                )
            if not password:
                raise OtelDecisionsError(
                    f"--host {host}: a non-loopback bind needs credentials; set --user and --password "
                    "(or OTEL_DECISIONS_SERVE_USER / OTEL_DECISIONS_SERVE_PASSWORD)"
                )
        if password and not user:
            user = "default"
        self.host = host
        self.port = port
        self._credentials = (user, password) if user and password is not None else None
        self._max_concurrency = max_concurrency
        self._server: _Server | None = None
        self._engine: _Engine | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        """``http://host:port`` of the bound server (with credentials when configured)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = ""
        if self._credentials:
            from urllib.parse import quote

            auth = f"{quote(self._credentials[0], safe='')}:{quote(self._credentials[1], safe='')}@"
        return f"http://{auth}{host}:{self.port}"

    def start(self) -> ChdbHttpServer:
        """Open the engine, bind, and serve in a background thread."""
        self._engine = _Engine(self.path, self._max_concurrency)
        try:
            self._server = _Server((self.host, self.port), self._engine, self._credentials, ipv6=":" in self.host)
        except OSError as exc:
            self._engine.close()
            raise OtelDecisionsError(
                f"cannot listen on {self.host}:{self.port}: {exc}; choose another --port or stop what uses it"
            ) from exc
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_S}, name="otel-decisions-serve", daemon=True
        )
        self._thread.start()
        logger.info("serve: ClickHouse HTTP interface on %s:%s over %s", self.host, self.port, self.path)
        return self

    def stop(self, drain_timeout_s: float = 60.0) -> bool:
        """Stop accepting, wait for in-flight requests (up to *drain_timeout_s*), close the engine.

        Returns False when some request was still running at the deadline. Idempotent.
        """
        if self._server is None or self._stopped.is_set():
            return True
        self._stopped.set()
        server = self._server
        server.shutdown()  # the accept loop ends; no new connections
        server.draining = True  # keep-alive connections close after their current request
        idle = server.wait_idle(drain_timeout_s)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        assert self._engine is not None
        self._engine.close()
        logger.info("serve: stopped (%s)", "clean" if idle else "requests still running at the deadline")
        return idle

    def __enter__(self) -> ChdbHttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    path: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    user: str | None = None,
    password: str | None = None,
    allow_remote: bool = False,
    ready: Callable[[ChdbHttpServer], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully (blocking)."""
    server = ChdbHttpServer(path, host, port, user=user, password=password, allow_remote=allow_remote)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        if ready is not None:
            ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv: list[str] | None = None) -> int:
    """``python -m otel_decisions.serve`` (same options as ``otel-decisions serve``)."""
    import argparse

    from otel_decisions.settings import DecisionSettings

    parser = argparse.ArgumentParser(prog="python -m otel_decisions.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=None)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--user", default=os.environ.get("OTEL_DECISIONS_SERVE_USER"))
    parser.add_argument("--password", default=os.environ.get("OTEL_DECISIONS_SERVE_PASSWORD"))
    parser.add_argument("--allow-remote", action="store_true")
    args = parser.parse_args(argv)
    dsn = args.dsn or DecisionSettings().resolved_dsn
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        serve(
            dsn,
            args.host,
            args.port,
            user=args.user,
            password=args.password,
            allow_remote=args.allow_remote,
            ready=lambda s: print(f"serving ClickHouse HTTP on {s.host}:{s.port} over {s.path}", flush=True),
        )
    except OtelDecisionsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(_main())
