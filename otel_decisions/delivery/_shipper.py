"""The shipper: drains spool segments to the exporters, acknowledges only what they confirmed.

One process per spool root ships at a time (the holder of ``drain.lock``); it drains its own
directory and adopts the directories of other processes, live (what they have written so
far) or dead (everything, then removes the directory and folds its counters into the
ledger). A batch is retried with capped exponential backoff for as long as it takes; a
batch that keeps failing is halved (down to one span) so one oversized span cannot block
the rest. Acknowledgements are byte offsets per segment in ``progress.json`` (fsync'd),
written after every exporter returned SUCCESS: delivery is at least once, and the
decision id makes it exactly once in ClickHouse.

A torn or corrupt region in a closed segment (one the writer has moved past, or whose
writer is dead) is moved to ``quarantine/`` with a JSON report and logged as an error; the
valid records before and after it are delivered.

Example::

    shipper = Shipper(root, exporters, settings)
    shipper.drain_until_idle(deadline=time.monotonic() + 60)
    shipper.close()
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_decisions.delivery._codec import MAGIC, SegmentDecoder, count_spans, iter_frames, resync
from otel_decisions.delivery._spool import (
    DRAIN_LOCK,
    LEDGER_FILE,
    PROGRESS_FILE,
    QUARANTINE_DIR,
    STATS_FILE,
    FileLock,
    SpoolWriter,
    list_segments,
    list_spool_dirs,
    owner_alive,
    read_json,
    write_json,
)
from otel_decisions.settings import DecisionSettings

_BURST_COURTESY_S = 0.01
_BURST_RECORDS = 256
_BURST_SHARE = 8.0
"""While this process records flat out, the shipper waits this many times as long as its last pass took
(so delivery takes about a ninth of the interpreter, the recording calls the rest; it catches up after)."""
_BURST_MAX_WAIT_S = 0.5
_QUOTA_WAIT_RECENT_S = 1.0

logger = logging.getLogger("otel_decisions.delivery")

_READ_CHUNK = 4 << 20


def empty_progress() -> dict[str, Any]:
    return {"segments": {}, "delivered": 0, "quarantined_regions": 0, "quarantined_bytes": 0}


def empty_ledger() -> dict[str, Any]:
    return {
        "captured": 0,
        "spooled": 0,
        "durable": 0,
        "rejected": 0,
        "delivered": 0,
        "retried": 0,
        "quarantined_regions": 0,
        "quarantined_bytes": 0,
        "folding": None,
    }


class _Cursor:
    """Read position in one segment plus the definitions learned so far."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        self.decoder = SegmentDecoder()
        self.pos = len(MAGIC)
        if offset > self.pos:  # resuming mid-segment: re-learn the definitions before the offset
            data = os.pread(self.fd, offset - self.pos, self.pos)
            scan = iter_frames(data, 0)
            for kind, _, payload in scan.records:
                if kind != 0x50:
                    self.decoder.learn(kind, payload)
            self.pos = offset

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def read(self, max_spans: int) -> tuple[Any, bytes]:
        """Frames from the position on (at most ``max_spans`` spans) and the bytes they were read from."""
        chunk = max(_READ_CHUNK, max_spans << 11)  # about 2 KiB a decision record
        while True:
            size = self.size()
            want = min(chunk, size - self.pos)
            data = os.pread(self.fd, want, self.pos) if want > 0 else b""
            scan = iter_frames(data, 0, spans_limit=max_spans)
            if scan.problem == "partial" and not scan.records and self.pos + want < size:
                chunk *= 2  # one frame larger than the chunk
                continue
            if scan.problem == "partial" and scan.records and self.pos + want < size:
                scan.problem = None  # cut by the chunk, not by the file: the rest comes next read
            return scan, data

    def close(self) -> None:
        os.close(self.fd)


class Shipper:
    """Drains the spool root to ``exporters``; runs as a thread or is called directly (CLI drain)."""

    def __init__(
        self,
        root: Path,
        exporters: Sequence[SpanExporter],
        settings: DecisionSettings,
        writer: SpoolWriter | None = None,
        *,
        poll_interval_s: float = 0.2,
    ) -> None:
        self.root = root
        self.exporters = list(exporters)
        self.settings = settings
        self.writer = writer
        self.poll_interval_s = poll_interval_s
        self.drain_lock = FileLock(root / DRAIN_LOCK)
        self.delivered = 0
        self.retried = 0
        self.quarantined_regions = 0
        self.quarantined_bytes = 0
        self._cursors: dict[Path, _Cursor] = {}
        preferred = [getattr(e, "preferred_batch_size", None) for e in self.exporters]
        sizes = [size for size in preferred if isinstance(size, int) and size > 0]
        self._max_batch = settings.export_batch_size
        if sizes and len(sizes) == len(preferred):
            # every exporter writes larger batches better (a ClickHouse INSERT makes one part each)
            self._max_batch = max(self._max_batch, min(sizes))
        self._batch_limit = settings.export_batch_size
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._directory_errors: set[tuple[str, str]] = set()
        self._captured_at_last_pass = 0
        self._give_up_at: float | None = None
        self._thread: threading.Thread | None = None
        self._failing_since: float | None = None
        self._last_failure_log = 0.0

    # --- thread ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="otel-decisions-shipper", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        with suppress_instrumentation():  # delivering must not trace itself
            while not self._stop.is_set():
                if not self.drain_lock.try_acquire():
                    self._wake.wait(max(self.poll_interval_s, 0.5))
                    self._wake.clear()
                    continue
                started = time.monotonic()
                try:
                    progressed = self.drain_pass()
                except Exception:  # never let the thread die: the records stay on disk
                    logger.exception("otel-decisions delivery: shipper pass failed; retrying")
                    progressed = False
                    self._stop.wait(1.0)
                if not progressed:
                    self._wake.wait(self.poll_interval_s)
                    self._wake.clear()
                elif self._recording_burst():
                    # The application is recording flat out in this process: leave it the
                    # interpreter for a while. The spool absorbs the burst; delivery catches up
                    # (and a spool at its quota is no burst: recording waits for delivery then).
                    took = time.monotonic() - started
                    self._stop.wait(min(_BURST_MAX_WAIT_S, max(_BURST_COURTESY_S, _BURST_SHARE * took)))

    def _in_recording_burst(self) -> bool:
        """:meth:`_recording_burst` without starting a new count."""
        writer = self.writer
        return (
            writer is not None
            and writer.captured - self._captured_at_last_pass > _BURST_RECORDS
            and not self._recorder_waits(writer)
        )

    def _recording_burst(self) -> bool:
        """More than a few hundred records captured in this process since the last pass, by recording calls
        that are not waiting for this shipper (at the spool quota, yielding to them would only slow both)."""
        writer = self.writer
        if writer is None:
            return False
        captured = writer.captured
        burst = captured - self._captured_at_last_pass > _BURST_RECORDS
        self._captured_at_last_pass = captured
        return burst and not self._recorder_waits(writer)

    @staticmethod
    def _recorder_waits(writer: SpoolWriter) -> bool:
        return time.monotonic() - writer.quota_waited_at < _QUOTA_WAIT_RECENT_S

    def stop(self, deadline: float) -> None:
        """Keep shipping until nothing is pending or ``deadline`` (monotonic), then stop the thread."""
        self._give_up_at = deadline
        if self._thread is not None:
            while self._thread.is_alive() and time.monotonic() < deadline:
                if self.drain_lock.held and not self.has_pending():
                    break
                if not self.drain_lock.held and self.writer is not None and self.own_pending() == 0:
                    break
                self._wake.set()
                time.sleep(0.02)
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()) + 0.5)

    def close(self) -> None:
        for cursor in self._cursors.values():
            cursor.close()
        self._cursors.clear()
        self.drain_lock.release()

    # --- one pass over the root -----------------------------------------------------------
    def drain_pass(self) -> bool:
        """Ship what is readable now from every spool directory; True if anything moved."""
        progressed = False
        own = self.writer.directory if self.writer is not None and not self.writer.closed else None
        dirs = list_spool_dirs(self.root)
        if own is not None and own in dirs:
            dirs.remove(own)
            dirs.insert(0, own)
        for directory in dirs:
            if self._stop.is_set() and self._past_deadline():
                break
            try:
                progressed |= self.ship_directory(directory, own=directory == own)
            except Exception as exc:  # noqa: BLE001 - one unreadable spool must not stop the others
                self._report_directory_error(directory, exc)
        return progressed

    def _report_directory_error(self, directory: Path, exc: Exception) -> None:
        key = (directory.name, type(exc).__name__)
        if key not in self._directory_errors:
            self._directory_errors.add(key)
            logger.error(
                "otel-decisions delivery: cannot ship spool %s (%s: %s); its records stay on disk, "
                "the other spools are still shipped",
                directory,
                type(exc).__name__,
                exc,
            )

    def has_pending(self) -> bool:
        """Anything readable not yet acknowledged (cheap: compares offsets with file sizes)."""
        for directory in list_spool_dirs(self.root):
            progress = read_json(directory / PROGRESS_FILE, empty_progress())
            for _number, path in list_segments(directory):
                acked = progress["segments"].get(path.name, len(MAGIC))
                try:
                    if path.stat().st_size > acked:
                        return True
                except FileNotFoundError:
                    continue
        return False

    def own_pending(self) -> int:
        """Records this process wrote that are not acknowledged yet (by whichever process drains)."""
        if self.writer is None:
            return 0
        progress = read_json(self.writer.directory / PROGRESS_FILE, empty_progress())
        return max(0, self.writer.spooled - progress["delivered"])

    def _past_deadline(self) -> bool:
        return self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def ship_directory(self, directory: Path, *, own: bool) -> bool:
        alive = own or owner_alive(directory)
        segments = list_segments(directory)
        if own and self.writer is not None:
            active: int | None = self.writer.active_segment
        elif alive and segments:
            active = segments[-1][0]
        else:
            active = None
        progress_path = directory / PROGRESS_FILE
        progress = read_json(progress_path, empty_progress())
        progressed = False
        for number, path in segments:
            if own and self.writer is not None and number > self.writer.active_segment:
                break  # created after we read the active number
            closed = active is None or number < active
            moved, finished = self._ship_segment(directory, path, progress, progress_path, closed=closed)
            progressed |= moved
            if finished:
                self._remove_segment(path, progress, progress_path)
                progressed = True
                continue
            if not closed or (self._stop.is_set() and self._past_deadline()):
                break
            if not finished:
                break  # export gave up (deadline): keep order, stop here
        if not alive and not list_segments(directory):
            self._fold_directory(directory)
            progressed = True
        return progressed

    def _ship_segment(
        self, directory: Path, path: Path, progress: dict[str, Any], progress_path: Path, *, closed: bool
    ) -> tuple[bool, bool]:
        """Ship a segment from its acknowledged offset; returns (anything moved, fully done & closed)."""
        name = path.name
        cursor = self._cursors.get(path)
        if cursor is None:
            try:
                cursor = _Cursor(path, progress["segments"].get(name, len(MAGIC)))
            except FileNotFoundError:
                return False, False
            self._cursors[path] = cursor
        moved = False
        while True:
            if cursor.size() < len(MAGIC):
                if closed:  # torn before the header was complete
                    self._quarantine(directory, cursor, progress, progress_path, 0, "segment header torn")
                    return True, True
                return moved, False
            scan, data = cursor.read(self._batch_limit)
            end_pass = False
            if scan.records:
                spans = cursor.decoder.decode_frames(scan.records)
                if spans:
                    outcome = self._export(spans)
                    if outcome == "gave_up":
                        return moved, False
                    if outcome == "split":
                        continue
                    # acknowledge: every exporter confirmed this batch
                    self._batch_limit = min(self._max_batch, self._batch_limit * 2)
                    end_pass = self._in_recording_burst()
                self.delivered += len(spans)  # the exporters confirmed them (counted before the ack is visible)
                cursor.pos += scan.end
                progress["segments"][name] = cursor.pos
                progress["delivered"] += len(spans)
                write_json(progress_path, progress, sync=True)
                moved = True
                if end_pass:
                    return moved, False  # the application is recording flat out: give it the interpreter
                continue
            if scan.problem is None:
                return moved, closed  # clean end of data
            if not closed:
                return moved, False  # a record still being written, or wait until the writer moves on
            start = cursor.pos
            if scan.problem == "partial":
                end = cursor.size()
                reason = "torn tail: the last record is incomplete"
            else:
                after = resync(data, 0)
                end = cursor.size() if after is None else start + after
                reason = "corrupt record: length, kind or checksum does not match"
            self._quarantine(directory, cursor, progress, progress_path, end - start, reason)
            moved = True
            if end >= cursor.size():
                return moved, True

    def _quarantine(
        self, directory: Path, cursor: _Cursor, progress: dict[str, Any], progress_path: Path, length: int, reason: str
    ) -> None:
        start = cursor.pos
        if length <= 0:
            length = max(0, cursor.size() - start)
        data = os.pread(cursor.fd, length, start) if length else b""
        qdir = self.root / QUARANTINE_DIR
        qdir.mkdir(exist_ok=True, mode=0o700)
        stem = f"{directory.name}__{cursor.path.name}__{start}"
        (qdir / f"{stem}.bad").write_bytes(data)
        report = {
            "source": str(cursor.path),
            "offset": start,
            "length": len(data),
            "reason": reason,
            "delivered_before": progress["delivered"],
            "detected_unix_nano": time.time_ns(),
        }
        write_json(qdir / f"{stem}.json", report, sync=True)
        cursor.pos = start + max(length, len(data))
        progress["segments"][cursor.path.name] = cursor.pos
        progress["quarantined_regions"] += 1
        progress["quarantined_bytes"] += len(data)
        write_json(progress_path, progress, sync=True)
        self.quarantined_regions += 1
        self.quarantined_bytes += len(data)
        logger.error(
            "otel-decisions delivery: quarantined %d bytes of %s at offset %d (%s); the valid records before "
            "it were delivered; the bytes and a report are in %s",
            len(data),
            cursor.path,
            start,
            reason,
            qdir / f"{stem}.json",
        )

    def _remove_segment(self, path: Path, progress: dict[str, Any], progress_path: Path) -> None:
        cursor = self._cursors.pop(path, None)
        if cursor is not None:
            cursor.close()
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        progress["segments"].pop(path.name, None)
        write_json(progress_path, progress, sync=True)
        if self.writer is not None:
            self.writer.notify_space_freed()

    def _fold_directory(self, directory: Path) -> None:
        """A dead process's directory is fully drained: add its counters to the ledger, remove it."""
        ledger_path = self.root / LEDGER_FILE
        ledger = {**empty_ledger(), **read_json(ledger_path, empty_ledger())}
        if ledger.get("folding") != directory.name:
            stats = read_json(directory / STATS_FILE)
            progress = read_json(directory / PROGRESS_FILE, empty_progress())
            delivered = progress["delivered"]
            # stats.json can lag a process killed between two commits: the disk is the truth
            spooled = max(stats.get("spooled", 0), delivered)
            ledger["captured"] += max(stats.get("captured", 0), spooled + stats.get("rejected", 0))
            ledger["spooled"] += spooled
            ledger["durable"] += max(stats.get("durable", 0), delivered)
            ledger["rejected"] += stats.get("rejected", 0)
            ledger["delivered"] += delivered
            ledger["quarantined_regions"] += progress["quarantined_regions"]
            ledger["quarantined_bytes"] += progress["quarantined_bytes"]
            ledger["folding"] = directory.name
            write_json(ledger_path, ledger, sync=True)
        shutil.rmtree(directory, ignore_errors=True)

    def _save_retries(self, count: int) -> None:
        ledger_path = self.root / LEDGER_FILE
        ledger = {**empty_ledger(), **read_json(ledger_path, empty_ledger())}
        ledger["retried"] += count
        write_json(ledger_path, ledger)

    # --- export with retry --------------------------------------------------------------
    def _export(self, spans: list[ReadableSpan]) -> str:
        """'ok' once every exporter confirmed; 'split' to retry with a smaller batch; 'gave_up' at the deadline."""
        pending = list(range(len(self.exporters)))
        backoff = self.settings.retry_initial_backoff_s
        failures = 0
        while True:
            failed = []
            for index in pending:
                exporter = self.exporters[index]
                try:
                    ok = exporter.export(spans) == SpanExportResult.SUCCESS
                except Exception as exc:  # noqa: BLE001 - an exporter must not raise; if one does, it is a failure
                    logger.warning("otel-decisions delivery: %s raised %r", type(exporter).__name__, exc)
                    ok = False
                if not ok:
                    failed.append(index)
            if not failed:
                if self._failing_since is not None:
                    logger.warning(
                        "otel-decisions delivery: exporting works again after %.1f s of failures",
                        time.monotonic() - self._failing_since,
                    )
                    self._failing_since = None
                return "ok"
            pending = failed
            failures += 1
            self.retried += 1
            if self.drain_lock.held:
                self._save_retries(1)
            now = time.monotonic()
            if self._failing_since is None:
                self._failing_since = now
            if now - self._last_failure_log > 10:
                self._last_failure_log = now
                logger.warning(
                    "otel-decisions delivery: export of %d spans to %s failed; retrying with backoff "
                    "(nothing is dropped: the spans stay in the spool)",
                    len(spans),
                    ", ".join(type(self.exporters[i]).__name__ for i in failed),
                )
            if failures >= 3 and len(spans) > 1 and self._batch_limit > 1:
                self._batch_limit = max(1, len(spans) // 2)
                return "split"
            if self._past_deadline():
                return "gave_up"
            delay = backoff * (0.8 + 0.4 * random.random())
            if self._give_up_at is not None:
                delay = min(delay, max(0.0, self._give_up_at - time.monotonic()))
            self._stop.wait(delay) if not self._stop.is_set() else time.sleep(min(delay, 0.05))
            backoff = min(backoff * 2, self.settings.retry_max_backoff_s)

    # --- direct use (CLI drain) ---------------------------------------------------------------
    def drain_until_idle(self, deadline: float | None) -> bool:
        """Ship until nothing is pending (True) or ``deadline`` passes (False). Needs the drain lock."""
        self._give_up_at = deadline
        while True:
            self.drain_pass()
            if not self.has_pending():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(self.poll_interval_s)


def pending_in_directory(directory: Path) -> tuple[int, list[str]]:
    """Span records on disk after the acknowledged offsets, and any problems seen at the tails."""
    progress = read_json(directory / PROGRESS_FILE, empty_progress())
    pending = 0
    problems: list[str] = []
    for _, path in list_segments(directory):
        start = progress["segments"].get(path.name, len(MAGIC))
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        offset = max(start, len(MAGIC))
        while offset < len(data):
            scan = iter_frames(data, offset)
            pending += count_spans(scan.records)
            if scan.problem is None:
                break
            problems.append(f"{path.name}: {scan.problem} data at offset {scan.end}")
            if scan.problem == "partial":
                break
            after = resync(data, scan.end)
            if after is None:
                break
            offset = after
    return pending, problems
