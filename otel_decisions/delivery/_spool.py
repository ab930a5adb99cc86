"""On-disk spool layout, the per-process writer (group commit, quota) and small file helpers.

Layout under the spool root (``settings.resolved_spool_dir``)::

    drain.lock                         flock held by the one process that ships (the drainer)
    ledger.json                        totals of spool directories already drained and removed
    quarantine/                        corrupt or torn segment tails, with a JSON report each
    <host>-<pid>-<start_ns>/           one directory per recording process
        owner.lock                     flock held by that process while it lives
        stats.json                     its counters (captured, spooled, durable, rejected)
        progress.json                  the drainer's acknowledgements: byte offset per segment
        seg-000000000001.spool         append-only segments (see _codec for the format)

The writer appends each record with one ``write(2)`` before the recording call returns, so
the record survives the death of the process (``kill -9``) as soon as the call returns;
a background thread ``fsync``s every ``commit_interval_ms`` or ``commit_max_records``
records (group commit), which bounds what an operating-system crash can take. With
``strict_fsync`` the recording call waits for the ``fsync`` of its record.

Example::

    writer = SpoolWriter(Path("/var/spool/otel-decisions"), settings)
    writer.append(span)        # on the recording thread
    writer.close()
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from otel_decisions.delivery._codec import MAGIC, SpanEncoder
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.settings import DecisionSettings

logger = logging.getLogger("otel_decisions.delivery")

SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".spool"
DEFAULT_SEGMENT_BYTES = 16 << 20
BLOCKED_LOG_INTERVAL_S = 30.0
"""Recording blocked at the quota is logged at most this often (a batch blocks once per block written)."""
BLOCK_BYTES = 1 << 20
"""A batch of records is written a block of about this many bytes per ``write(2)``."""
OWNER_LOCK = "owner.lock"
STATS_FILE = "stats.json"
PROGRESS_FILE = "progress.json"
LEDGER_FILE = "ledger.json"
DRAIN_LOCK = "drain.lock"
QUARANTINE_DIR = "quarantine"


class SpoolQuotaError(OtelDecisionsError):
    """The spool reached ``spool_quota_bytes`` and the quota policy refused the record."""


def segment_name(number: int) -> str:
    return f"{SEGMENT_PREFIX}{number:012d}{SEGMENT_SUFFIX}"


def segment_number(name: str) -> int | None:
    if name.startswith(SEGMENT_PREFIX) and name.endswith(SEGMENT_SUFFIX):
        try:
            return int(name[len(SEGMENT_PREFIX) : -len(SEGMENT_SUFFIX)])
        except ValueError:
            return None
    return None


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    """Segments of one spool directory, oldest first."""
    found: list[tuple[int, Path]] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return found
    for entry in entries:
        number = segment_number(entry.name)
        if number is not None:
            found.append((number, Path(entry.path)))
    found.sort()
    return found


def list_spool_dirs(root: Path) -> list[Path]:
    """Per-process spool directories under the root."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    return sorted(
        Path(e.path) for e in entries if e.is_dir() and e.name != QUARANTINE_DIR and not e.name.startswith(".")
    )


def spool_usage(root: Path) -> int:
    """Bytes held by segment files under the root (what the quota counts)."""
    total = 0
    for directory in list_spool_dirs(root):
        for _, path in list_segments(directory):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                pass
    return total


def read_json(path: Path, default: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return dict(default or {})
    except (json.JSONDecodeError, OSError):
        logger.error("otel-decisions delivery: unreadable %s; treating it as empty", path)
        return dict(default or {})


def write_json(path: Path, value: dict[str, Any], *, sync: bool = False) -> None:
    """Replace ``path`` atomically (write a temporary file, optionally fsync, rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = json.dumps(value, sort_keys=True).encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class FileLock:
    """An exclusive ``flock`` on a file, held until :meth:`release` (or process death)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        self._fd = fd
        return True

    def forget_after_fork(self) -> None:
        """In a forked child: close the inherited descriptor without unlocking (unlocking it
        would unlock the parent's lock too); the child does not hold the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None


def owner_alive(directory: Path) -> bool:
    """True while the process that owns ``directory`` holds its owner lock."""
    lock = FileLock(directory / OWNER_LOCK)
    try:
        if lock.try_acquire():
            lock.release()
            return False
    except FileNotFoundError:
        return False
    return True


class SpoolWriter:
    """Appends encoded spans to this process's spool directory; group commit in a thread.

    Thread-safe. ``append`` returns once the record is written to the segment file (strict
    mode: once it is fsync'd). ``segment_bytes`` defaults to 16 MiB or a quarter of the quota.
    """

    def __init__(self, root: Path, settings: DecisionSettings, *, segment_bytes: int | None = None) -> None:
        self.root = root
        self.settings = settings
        root.mkdir(parents=True, exist_ok=True, mode=0o700)  # records are personal data, even pseudonymised
        name = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}"
        # Built under a hidden name and renamed once locked, so a drainer never mistakes a
        # directory being born for one whose owner died.
        building = root / f".{name}"
        building.mkdir(mode=0o700)
        self._owner = FileLock(building / OWNER_LOCK)
        if not self._owner.try_acquire():  # cannot happen for a fresh directory
            raise OtelDecisionsError(f"spool directory {building} is locked by another process")
        self.directory = building
        self.segment_bytes = segment_bytes or max(64 << 10, min(DEFAULT_SEGMENT_BYTES, settings.spool_quota_bytes // 4))
        self._encoder = SpanEncoder()
        self._lock = threading.Lock()
        self._quota = settings.spool_quota_bytes
        self._strict = settings.strict_fsync
        self._commit_max = 1 if settings.commit_interval_ms <= 0 else settings.commit_max_records
        self._durable_cond = threading.Condition(threading.Lock())
        self._commit_now = threading.Event()
        self._closed = False
        # counters (records)
        self.captured = 0
        self.spooled = 0
        self.durable = 0
        self.rejected = 0
        self._since_commit = 0
        self._retired_fds: list[int] = []
        self.segment_number = 0
        self._fd = -1
        self._offset = 0
        self._open_segment(1)
        self.directory = root / name
        os.rename(building, self.directory)
        self._owner.path = self.directory / OWNER_LOCK
        self._own_bytes = len(MAGIC)
        self._others_bytes = max(0, spool_usage(root) - len(MAGIC))
        self._usage_checked = time.monotonic()
        self._space_freed = threading.Condition(threading.Lock())
        self.on_commit: list[Any] = []  # callables run after each commit (wake the shipper)
        self._stats_written: tuple[int, int, int, int] | None = None
        self._rotation_failed = False
        self._blocked_logged_at = -BLOCKED_LOG_INTERVAL_S
        self.quota_waited_at = -1.0
        """When a recording call last waited for space at the quota (monotonic seconds)."""
        self._thread = threading.Thread(target=self._commit_loop, name="otel-decisions-spool-commit", daemon=True)
        self._thread.start()

    # --- recording path -------------------------------------------------------------
    def append(self, span: ReadableSpan) -> None:
        """Write the span to the spool (raises :class:`SpoolQuotaError` if the policy says fail)."""
        payload, resource, scope = self._encoder.span_payload(span)
        with self._lock:
            self.captured += 1
            data = self._encoder.frames_for(payload, resource, scope)
            size = len(data)
            if not self._closed and self._own_bytes + self._others_bytes + size <= self._quota:
                # fast path: one write(2); the kernel holds it even if this process dies next
                try:
                    written = os.write(self._fd, data)
                    if written != size:
                        self._write_rest(data, written)
                except OSError as exc:
                    self._undo_torn_write_locked(exc)
                self._offset += size
                self._own_bytes += size
                self.spooled += 1
                seq = self.spooled
                self._since_commit += 1
                if self._since_commit >= self._commit_max or self._offset >= self.segment_bytes:
                    self._after_write_locked()
                fast = True
            else:
                # frames_for marked its definitions as written: they were not, so write them again
                self._encoder.new_segment()
                fast = False
        if not fast:
            seq = self._append_slow(payload, resource, scope)
        if self._strict:
            self._commit_now.set()
            with self._durable_cond:
                while self.durable < seq:
                    self._durable_cond.wait(1.0)

    def append_payloads(
        self, payloads: Sequence[bytes], resource: Any, scope: Any
    ) -> tuple[int, OtelDecisionsError | None]:
        """Write span payloads (:meth:`SpanEncoder.span_payload`'s, all of one resource and scope) in order,
        a block of frames per ``write(2)``, each block under the same quota, commit and segment rules as
        :meth:`append`. Returns how many were spooled (a prefix) and the refusal that stopped the rest."""
        total = len(payloads)
        done = 0
        try:
            while done < total:
                with self._lock:
                    stop = done
                    estimate = 0
                    while stop < total and estimate < BLOCK_BYTES:
                        estimate += len(payloads[stop]) + 17  # header and resource/scope prefix
                        stop += 1
                    block = self._encoder.frames_many(payloads[done:stop], resource, scope)
                    size = len(block)
                    count = stop - done
                    self.captured += count
                    fast = not self._closed and self._own_bytes + self._others_bytes + size <= self._quota
                    if fast:
                        try:
                            written = os.write(self._fd, block)
                            if written != size:
                                self._write_rest(block, written)
                        except OSError as exc:
                            self.rejected += count - 1  # the whole block was cut back; undo counts one
                            self._undo_torn_write_locked(exc)
                        self._offset += size
                        self._own_bytes += size
                        self.spooled += count
                        seq = self.spooled
                        self._since_commit += count
                        if self._since_commit >= self._commit_max or self._offset >= self.segment_bytes:
                            self._after_write_locked()
                        done = stop
                    else:
                        self.captured -= count  # counted again, one at a time, below
                        self._encoder.new_segment()
                if not fast:
                    for payload in payloads[done:stop]:
                        with self._lock:
                            self.captured += 1
                        seq = self._append_slow(payload, resource, scope)
                        done += 1
                if self._strict:
                    self._commit_now.set()
                    with self._durable_cond:
                        while self.durable < seq:
                            self._durable_cond.wait(1.0)
        except OtelDecisionsError as exc:
            return done, exc
        return done, None

    def _undo_torn_write_locked(self, exc: OSError) -> None:
        """A write failed part-way (disk full, I/O error): cut the segment back to its last whole
        record so later records stay readable, forget the definitions it may have lost, and fail
        the recording call loudly — nothing is silently dropped."""
        try:
            os.ftruncate(self._fd, self._offset)
        except OSError:
            pass  # the reader's checksums still find the torn tail and quarantine it
        self._encoder.new_segment()
        self.rejected += 1
        raise OtelDecisionsError(
            f"could not write the decision spool in {self.directory} ({exc}); this record was not kept. "
            "Free disk space or move spool_dir (OTEL_DECISIONS_SPOOL_DIR) to a healthy volume."
        ) from exc

    def _write_rest(self, data: bytes, written: int) -> None:
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(self._fd, view) :]

    def _after_write_locked(self) -> None:
        if self._since_commit >= self._commit_max:
            self._commit_now.set()
        if self._offset >= self.segment_bytes:
            self._rotate_locked()

    def _append_slow(self, payload: bytes, resource: Any, scope: Any) -> int:
        """Closed, or at the quota: refuse, or block until the shipper frees space."""
        deadline: float | None = None
        while True:
            with self._lock:
                if self._closed:
                    self.rejected += 1
                    raise OtelDecisionsError(
                        "the durable span processor is shut down; a decision recorded after shutdown was refused. "
                        "Record decisions before the tracer provider shuts down."
                    )
                data = self._encoder.frames_for(payload, resource, scope)
                if self._fits(len(data)):
                    self._write(data)
                    return self.spooled
                self._encoder.new_segment()
            deadline = self._over_quota(len(data), deadline)

    def _fits(self, size: int) -> bool:
        quota = self.settings.spool_quota_bytes
        if self._own_bytes + self._others_bytes + size <= quota:
            return True
        now = time.monotonic()
        if now - self._usage_checked > 0.02:
            self._refresh_usage_locked()
        return self._own_bytes + self._others_bytes + size <= quota

    def _refresh_usage_locked(self) -> None:
        self._usage_checked = time.monotonic()
        own = 0
        for _, path in list_segments(self.directory):
            try:
                own += path.stat().st_size
            except FileNotFoundError:
                pass
        self._own_bytes = own
        self._others_bytes = max(0, spool_usage(self.root) - own)

    def _over_quota(self, size: int, deadline: float | None) -> float:
        """Apply the quota policy once; returns the block deadline to keep waiting, or raises."""
        settings = self.settings
        quota = settings.spool_quota_bytes
        message = (
            f"spool_quota_bytes: the delivery spool at {self.root} holds {self._own_bytes + self._others_bytes} "
            f"bytes, at its quota of {quota} bytes, because records are not being delivered (is the exporter's "
            f"endpoint down?). Run `otel-decisions delivery status` to see what is pending; raise "
            f"OTEL_DECISIONS_SPOOL_QUOTA_BYTES or restore the endpoint."
        )
        if size + len(MAGIC) > quota:
            with self._lock:
                self.rejected += 1
            raise SpoolQuotaError(f"a {size}-byte record can never fit: {message}")
        if settings.quota_policy == "fail":
            with self._lock:
                self.rejected += 1
            logger.error("otel-decisions delivery: decision refused (quota_policy=fail): %s", message)
            raise SpoolQuotaError(f"decision refused (quota_policy=fail): {message}")
        now = time.monotonic()
        if deadline is None:
            timeout = settings.quota_block_timeout_s
            deadline = float("inf") if timeout is None else now + timeout
            if now - self._blocked_logged_at >= BLOCKED_LOG_INTERVAL_S:  # once per episode, not per record
                self._blocked_logged_at = now
                logger.warning("otel-decisions delivery: recording blocked (quota_policy=block): %s", message)
            with self._lock:  # let the shipper free the active segment once it is delivered
                if self._offset > len(MAGIC):
                    self._rotate_locked()
        if now >= deadline:
            with self._lock:
                self.rejected += 1
            raise SpoolQuotaError(
                f"decision refused after blocking {settings.quota_block_timeout_s} s "
                f"(quota_policy=block, quota_block_timeout_s): {message}"
            )
        self.quota_waited_at = now  # the shipper must not yield to a recorder that waits for it
        with self._space_freed:
            self._space_freed.wait(min(0.05, max(0.0, deadline - now)))
        return deadline

    def notify_space_freed(self) -> None:
        """Called by the shipper after it deletes delivered segments."""
        with self._lock:
            self._usage_checked = 0.0
        with self._space_freed:
            self._space_freed.notify_all()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self._undo_torn_write_locked(exc)
        self._offset += len(data)
        self._own_bytes += len(data)
        self.spooled += 1
        self._since_commit += 1
        if self._since_commit >= self.settings.commit_max_records or self.settings.commit_interval_ms <= 0:
            self._commit_now.set()
        if self._offset >= self.segment_bytes:
            self._rotate_locked()

    # --- segments ---------------------------------------------------------------------
    def _open_segment(self, number: int) -> None:
        """Open segment *number*; on failure nothing changes (a partial file is removed)."""
        path = self.directory / segment_name(number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            if os.write(fd, MAGIC) != len(MAGIC):
                raise OSError("short write of the segment header")
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        self._fd = fd
        self._offset = len(MAGIC)
        self.segment_number = number
        self._encoder.new_segment()

    def _rotate_locked(self) -> None:
        """Start the next segment. If it cannot be opened (disk full, no file descriptors), keep
        appending to the current one and try again at the next record: the record just written is
        safe, and its caller must not see an error for it."""
        old = self._fd
        try:
            self._open_segment(self.segment_number + 1)
        except OSError as exc:
            if not self._rotation_failed:
                self._rotation_failed = True
                logger.error(
                    "otel-decisions delivery: cannot start a new spool segment in %s (%s); "
                    "appending to the current one",
                    self.directory,
                    exc,
                )
            return
        self._rotation_failed = False
        self._retired_fds.append(old)
        self._own_bytes += len(MAGIC)
        self._commit_now.set()

    # --- group commit -------------------------------------------------------------------
    def _commit_loop(self) -> None:
        interval = max(self.settings.commit_interval_ms / 1000.0, 0.0005)
        while True:
            self._commit_now.wait(interval)
            self._commit_now.clear()
            closed = self.commit()
            if closed:
                return

    def commit(self) -> bool:
        """fsync everything written so far; returns True once the writer is closed."""
        with self._lock:
            target = self.spooled
            fds = [*self._retired_fds, self._fd]
            self._retired_fds = []
            self._since_commit = 0
            closed = self._closed
        failed = False
        unsynced_retired: list[int] = []
        for index, fd in enumerate(fds):
            if fd < 0:
                continue
            retired = index < len(fds) - 1
            try:
                os.fsync(fd)
            except OSError as exc:  # a failing disk must be loud, the records stay in the page cache
                logger.error("otel-decisions delivery: fsync of the spool failed: %s", exc)
                failed = True
                if retired:
                    unsynced_retired.append(fd)  # still open: retried at the next commit
                continue
            if retired or closed:
                os.close(fd)
        if failed:
            # After a failed fsync the kernel may have dropped the dirty pages ("fsyncgate"): never
            # report those records as durable; strict callers keep waiting, the shipper still delivers.
            with self._lock:
                self._retired_fds = unsynced_retired + self._retired_fds
            return closed
        if target > self.durable:
            with self._durable_cond:
                self.durable = target
                self._durable_cond.notify_all()
            for callback in self.on_commit:
                callback()
        if time.monotonic() - self._usage_checked > 1.0:  # other processes' share of the quota
            with self._lock:
                self._refresh_usage_locked()
        self._write_stats()
        return closed

    def _write_stats(self, force: bool = False) -> None:
        snapshot = (self.captured, self.spooled, self.durable, self.rejected)
        if snapshot == self._stats_written and not force:
            return
        try:
            write_json(
                self.directory / STATS_FILE,
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "captured": snapshot[0],
                    "spooled": snapshot[1],
                    "durable": snapshot[2],
                    "rejected": snapshot[3],
                    "updated_unix_nano": time.time_ns(),
                },
            )
            self._stats_written = snapshot
        except FileNotFoundError:  # directory removed by a drain after close
            pass

    def wait_durable(self, timeout: float | None = None) -> bool:
        """Commit now and wait until every record written so far is fsync'd."""
        with self._lock:
            target = self.spooled
        if self.durable >= target:
            return True
        self._commit_now.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._durable_cond:
            while self.durable < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._durable_cond.wait(remaining if remaining is not None else 1.0)
        return True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def active_segment(self) -> int:
        return self.segment_number

    def close(self) -> None:
        """Final commit, close the segment, release the owner lock (the directory stays for a drainer)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._commit_now.set()
        self._thread.join(timeout=30)
        if self._thread.is_alive():  # fsync stuck: still release what we can
            logger.error("otel-decisions delivery: spool commit did not finish within 30 s at shutdown")
        self._write_stats(force=True)
        self._owner.release()

    def after_fork_in_child(self) -> None:
        """The child is a new process: it gets its own directory; the parent's stays the parent's."""
        self._lock = threading.Lock()
        # inherited descriptors belong to the parent: close our copies without touching its locks
        for fd in [*self._retired_fds, self._fd]:
            try:
                os.close(fd)
            except OSError:
                pass
        owner_fd = self._owner._fd  # noqa: SLF001
        if owner_fd is not None:
            os.close(owner_fd)  # closing our copy of the descriptor; the flock stays with the parent
        self.__init__(self.root, self.settings, segment_bytes=self.segment_bytes)  # type: ignore[misc]
