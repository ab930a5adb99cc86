"""``PrefectInstrumentor``: every Prefect task run's decisions become spans, with no code changes.

Hook points (Prefect 3.9, pinned in ``pyproject.toml``; each is exercised by ``tests/test_capture.py``):

- ``{Sync,Async}TaskRunEngine.handle_success``: sees each successful attempt's return value
  while the task-run span is still current (also generator tasks' return values). A
  decision-shaped value becomes a decision span whose inputs are the task's parameters.
  Cache hits arrive as a ``ResultRecord`` and record nothing (no new decision was made); a cached
  recorded ``Decision`` (a resumed run's scoring task) is listed in the flow run's artifact.
- ``{Sync,Async}TaskRunEngine.call_task_fn`` and ``{Flow,AsyncFlow}RunEngine.call_flow_fn``:
  only when Prefect's run telemetry is off, the instrumentor makes the flow and task spans
  itself, so decisions still have parents; when it is on, Prefect's spans are used (never both).
- ``RunTelemetry.end_span_on_success/failure``: stamps on Prefect's run span the decisions this
  process recorded for the flow run since the last stamp (``decision.flow.captured``): always on
  the flow-run span, on a task-run span when its process recorded any (a pool or Dask worker).
- ``RunTelemetry._start_span``: a task run in a process-pool or Dask worker gets the flow run's
  traceparent (Prefect's own lookup finds the task run itself there and starts a new trace).
- ``{Flow,AsyncFlow}RunEngine.call_flow_fn`` also makes the flow run's decision artifacts when the
  flow function returns or raises (not when it suspends): :mod:`._artifacts`.
- ``call_flow_fn`` and ``Runner.start`` (``serve()``) also check that the processes the flow's task
  runner or the served flow runs use will record, and warn once, loudly, when they will not
  (:mod:`._workers`).

Modules are patched when Prefect imports them (``wrapt.register_post_import_hook``), never imported
by the instrumentor: a worker's flow run is ``python -m prefect.engine``. Every wrapper catches its own errors and logs them once: a task's result or exception is never changed.

Example::

    from otel_decisions import PrefectInstrumentor, configure
    configure()
    PrefectInstrumentor().instrument()
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Collection
from types import ModuleType
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from wrapt import register_post_import_hook, wrap_function_wrapper

from otel_decisions import _runtime, semconv
from otel_decisions._version import __version__
from otel_decisions.capture import (
    Decision,
    as_mapping,
    capture_batch,
    decision_card,
    decision_from_value,
    emit,
    note_auto_captured,
    prefect_identity,
    record_checkpoint,
    registry,
)
from otel_decisions.errors import DecisionValidationError, FieldError, OtelDecisionsError
from otel_decisions.instrumentation import _artifacts, _workers
from otel_decisions.instrumentation._protect import protect_provider
from otel_decisions.privacy import masked_parameter_values, run_values
from otel_decisions.settings import DEFAULT_CONFIDENCE_FIELDS

logger = logging.getLogger("otel_decisions")

_INSTRUMENTS = ("prefect >= 3.9, < 3.10",)

_TASK_ENGINE = "prefect.task_engine"
_FLOW_ENGINE = "prefect.flow_engine"
_TELEMETRY = "prefect.telemetry.run_telemetry"
_RUNNER = "prefect.runner.runner"

_PATCHES: tuple[tuple[str, str, str], ...] = (
    (_TASK_ENGINE, "SyncTaskRunEngine", "handle_success"),
    (_TASK_ENGINE, "AsyncTaskRunEngine", "handle_success"),
    (_TASK_ENGINE, "SyncTaskRunEngine", "call_task_fn"),
    (_TASK_ENGINE, "AsyncTaskRunEngine", "call_task_fn"),
    (_FLOW_ENGINE, "FlowRunEngine", "call_flow_fn"),
    (_FLOW_ENGINE, "AsyncFlowRunEngine", "call_flow_fn"),
    (_TELEMETRY, "RunTelemetry", "end_span_on_success"),
    (_TELEMETRY, "RunTelemetry", "end_span_on_failure"),
    (_TELEMETRY, "RunTelemetry", "_start_span"),
    (_RUNNER, "Runner", "start"),
)
_TRACEPARENT_LABEL = "__OTEL_TRACEPARENT"  # prefect.telemetry.run_telemetry.LABELS_TRACEPARENT_KEY


def _warn_once(key: str, message: str) -> bool:
    return _runtime.warn_once(key, message)


class PrefectInstrumentor(BaseInstrumentor):
    """Instruments Prefect 3.9 task and flow engines. Idempotent and reversible.

    ``instrument(tracer_provider=...)`` sets the provider of the fallback flow/task spans (made
    only when Prefect's own run telemetry is off); decision spans follow ``configure()``.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _INSTRUMENTS

    def _instrument(self, **kwargs: Any) -> None:
        self._tracer = trace.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__, kwargs.get("tracer_provider"))
        # run spans are scrubbed before any exporter sees them: on the provider given and the global one
        # (Prefect's own spans); a provider set later is protected when a run span first starts
        protect_provider(kwargs.get("tracer_provider"))
        protect_provider(trace.get_tracer_provider())
        self._active = True
        self._patched: set[str] = set()
        _workers.note_setup_call("instrument")
        # Patch an engine module when it is imported, never by importing it: a worker's flow run is
        # `python -m prefect.engine`, and importing prefect.flow_engine (which imports prefect.engine)
        # from a plugin or sitecustomize would make runpy warn that the module is already loaded.
        for module in dict.fromkeys(name for name, _cls, _method in _PATCHES):
            loaded = sys.modules.get(module)
            if loaded is not None:
                self._patch(loaded)
            else:
                register_post_import_hook(self._patch, module)

    def _patch(self, module: ModuleType) -> None:
        """Wrap the engine methods of *module* (called at once, or when Prefect imports it)."""
        if not getattr(self, "_active", False) or module.__name__ in self._patched:
            return
        wrappers = {
            "handle_success": (self._sync_handle_success, self._async_handle_success),
            "call_task_fn": (self._sync_call_task_fn, self._async_call_task_fn),
            "call_flow_fn": (self._sync_call_flow_fn, self._async_call_flow_fn),
        }
        for name, cls, method in _PATCHES:
            if name != module.__name__:
                continue
            if method in wrappers:
                sync_wrapper, async_wrapper = wrappers[method]
                wrapper = async_wrapper if cls.startswith("Async") else sync_wrapper
            elif method == "_start_span":
                wrapper = self._start_run_span
            elif method == "start":
                wrapper = self._runner_start
            else:
                wrapper = self._end_run_span
            wrap_function_wrapper(module, f"{cls}.{method}", wrapper)
        self._patched.add(module.__name__)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False  # a hook still pending for a module not imported yet does nothing
        for name, cls, method in _PATCHES:
            if name in self._patched:
                unwrap(getattr(sys.modules[name], cls), method)
        self._patched = set()

    # --- auto-capture -------------------------------------------------------------------
    def _capture(self, engine: Any, result: Any) -> None:
        """Record a decision for a decision-shaped task result. Never raises."""
        try:
            from prefect.client.schemas.objects import State
            from prefect.results import ResultRecord

            task_run = getattr(engine, "task_run", None)
            explicit = registry.pop_task(str(task_run.id)) if task_run is not None else 0
            runtime = _runtime.get_runtime()
            settings = runtime.settings
            if isinstance(result, ResultRecord):
                _note_cached(task_run, result)
                return
            if not settings.auto_capture or explicit:
                return  # the task recorded its decisions itself
            if result is None or isinstance(result, State) or inspect.isawaitable(result):
                return
            if isinstance(result, Decision) and result.timestamp_ns is not None:
                return  # already recorded with record_decision()
            task = engine.task
            dtype = task.name if settings.default_decision_type == "task" else settings.default_decision_type
            params = dict(engine.parameters or {})
            kwargs: dict[str, Any] = {
                "inputs": params,
                "defaults": {"type": dtype},
                "outcome_fields": settings.outcome_fields,
                "confidence_fields": settings.confidence_fields,
            }
            try:
                built = decision_from_value(result, **kwargs)
            except DecisionValidationError as exc:
                field = exc.field
                _warn_once(
                    f"auto-invalid:{task.name}:{field}",
                    f"otel-decisions: task {task.name!r} returned a decision with an invalid field: {exc}. "
                    f"The decision is recorded without {field!r}; the raw value stays in decision.output.",
                )
                built = _rebuild_without(result, field, kwargs)
            if built is not None:
                emit(built, semconv.DecisionSource.AUTO, True)
                note_auto_captured(result)
            else:
                capture_batch(result, task_name=task.name, settings=settings)  # a DataFrame or a list of rows
        except OtelDecisionsError as exc:
            if isinstance(exc, FieldError):  # bad settings: the same for every task, said once
                _runtime.warn_bad_settings(exc)
            else:  # the store refused this record: every one is reported
                logger.error("otel-decisions: a task's decision was not recorded: %s", exc)
        except Exception as exc:  # noqa: BLE001
            _warn_once(f"capture:{type(exc).__name__}", f"otel-decisions: auto-capture failed and was skipped: {exc}")

    def _sync_handle_success(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        self._capture(instance, args[0] if args else kwargs.get("result"))
        return wrapped(*args, **kwargs)

    async def _async_handle_success(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        self._capture(instance, args[0] if args else kwargs.get("result"))
        return await wrapped(*args, **kwargs)

    # --- fallback spans when Prefect's telemetry is off ---------------------------------
    def _start_own_span(self, engine: Any, run: Any, run_type: str) -> Span | None:
        """A flow/task span like Prefect's, only when Prefect made none. Never raises."""
        try:
            if getattr(engine, "_telemetry", None) is None or engine._telemetry.span is not None:  # noqa: SLF001 - Prefect 3.9 engine (pinned)
                return None
            if run is None:
                return None
            _remember_masked_parameters(run, getattr(engine, "parameters", None))
            attributes: dict[str, Any] = {
                semconv.PREFECT_RUN_NAME: run.name,
                semconv.PREFECT_RUN_TYPE: run_type,
                semconv.PREFECT_RUN_ID: str(run.id),
                semconv.PREFECT_TAGS: list(run.tags or []),
            }
            if run_type == "task":
                attributes[semconv.PREFECT_TASK_RUN_ID] = str(run.id)
                attributes[semconv.PREFECT_TASK_NAME] = engine.task.name
                if run.flow_run_id is not None:
                    attributes[semconv.PREFECT_FLOW_RUN_ID] = str(run.flow_run_id)
            else:
                attributes[semconv.PREFECT_FLOW_RUN_ID] = str(run.id)
                attributes[semconv.PREFECT_FLOW_NAME] = engine.flow.name
            return self._tracer.start_span(run.name, kind=SpanKind.INTERNAL, attributes=attributes)
        except Exception as exc:  # noqa: BLE001
            _warn_once(f"span:{type(exc).__name__}", f"otel-decisions: could not start a {run_type} span: {exc!r}")
            return None

    @staticmethod
    def _finish(span: Span, exc: BaseException | None, flow_run_id: str | None = None) -> None:
        try:
            if flow_run_id is not None:
                span.set_attribute(semconv.DECISION_FLOW_CAPTURED, registry.pop_flow(flow_run_id))
                record_checkpoint()
            if exc is not None:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                span.set_attribute(semconv.ERROR_TYPE, type(exc).__qualname__)
            else:
                span.set_status(Status(StatusCode.OK))
            span.end()
        except Exception as err:  # noqa: BLE001
            _warn_once("span-end", f"otel-decisions: could not end a span: {err!r}")

    def _sync_call_task_fn(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = self._start_own_span(instance, getattr(instance, "task_run", None), "task")
        if span is None:
            return wrapped(*args, **kwargs)
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                self._finish(span, exc)
                raise
        self._finish(span, None)
        return result

    async def _async_call_task_fn(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = self._start_own_span(instance, getattr(instance, "task_run", None), "task")
        if span is None:
            return await wrapped(*args, **kwargs)
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                result = await wrapped(*args, **kwargs)
            except BaseException as exc:
                self._finish(span, exc)
                raise
        self._finish(span, None)
        return result

    def _sync_call_flow_fn(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        self._check_task_runner(instance)
        flow_run = getattr(instance, "flow_run", None)
        _artifacts.started(flow_run)
        span = self._start_own_span(instance, flow_run, "flow")
        if flow_run is None:
            return wrapped(*args, **kwargs)
        run_id = str(flow_run.id)
        if span is None:
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                _flow_ended(instance, exc)
                raise
            if inspect.isawaitable(result):  # an async flow run by the sync engine returns a coroutine
                return self._finish_after(None, result, run_id, instance)
            _flow_ended(instance, None)
            return result
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                _flow_ended(instance, exc)
                self._finish(span, exc, run_id)
                raise
            if inspect.isawaitable(result):
                return self._finish_after(span, result, run_id, instance)
            _flow_ended(instance, None)
        self._finish(span, None, run_id)
        return result

    async def _finish_after(self, span: Span | None, awaitable: Any, run_id: str, engine: Any) -> Any:
        if span is None:
            try:
                result = await awaitable
            except BaseException as exc:
                await _aflow_ended(engine, exc)
                raise
            await _aflow_ended(engine, None)
            return result
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                result = await awaitable
            except BaseException as exc:
                await _aflow_ended(engine, exc)
                self._finish(span, exc, run_id)
                raise
            await _aflow_ended(engine, None)
        self._finish(span, None, run_id)
        return result

    async def _async_call_flow_fn(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        self._check_task_runner(instance)
        flow_run = getattr(instance, "flow_run", None)
        _artifacts.started(flow_run)
        span = self._start_own_span(instance, flow_run, "flow")
        if flow_run is None:
            return await wrapped(*args, **kwargs)
        return await self._finish_after(span, wrapped(*args, **kwargs), str(flow_run.id), instance)

    # --- other processes: will they record? ----------------------------------------------
    @staticmethod
    def _check_task_runner(engine: Any) -> None:
        """Warn once per flow and runner when the flow's tasks run in worker processes that will not
        record (through the flow run's logger: the console and the run's log in Prefect). Never raises."""
        try:
            flow = engine.flow
            where = _workers.out_of_process(flow.task_runner)
            if where is None or _workers.children_record():
                return
            if not _runtime.first_time(f"workers:{flow.name}:{type(flow.task_runner).__qualname__}"):
                return
            message = _workers.unrecorded_workers_message(flow.name, where)
            try:
                from prefect.logging import get_run_logger

                get_run_logger().warning(message)  # the console, and the flow run's log in Prefect's UI
            except Exception:  # noqa: BLE001 - no run logger here: this process's log
                logger.warning(message)
        except Exception as exc:  # noqa: BLE001
            _warn_once("workers-check", f"otel-decisions: could not check where a flow's tasks run: {exc!r}")

    @staticmethod
    def _runner_start(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """``serve()``: each flow run is a subprocess; warn once when those will not record."""
        try:
            if not _workers.children_record():
                name = str(getattr(instance, "name", "") or "")
                _warn_once("served-runs", _workers.unrecorded_served_runs_message([name] if name else []))
        except Exception as exc:  # noqa: BLE001
            _warn_once("served-check", f"otel-decisions: could not check how served flow runs record: {exc!r}")
        return wrapped(*args, **kwargs)

    # --- Prefect's own run spans: parentage across processes, completeness counts --------
    def _start_run_span(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """A task run in a process-pool or Dask worker: Prefect's parent lookup finds the task run
        itself there, and its span would start a new trace. Give it the flow run's traceparent (from
        the flow run's labels, which travel with the run context), so the task span and its decisions
        stay in the flow run's trace. Never raises."""
        try:
            run = args[0] if args else kwargs.get("run")
            protect_provider(trace.get_tracer_provider())
            parameters = args[1] if len(args) > 1 else kwargs.get("parameters")
            _remember_masked_parameters(run, parameters)
            labels = getattr(run, "labels", None)
            if run is not None and labels is not None and _TRACEPARENT_LABEL not in labels and hasattr(run, "task_key"):
                from prefect.context import FlowRunContext

                parent = instance._parent_run()  # noqa: SLF001 - Prefect 3.9 RunTelemetry (pinned)
                parent_labels = getattr(parent, "labels", None) or {}
                if parent is None or getattr(parent, "id", None) == run.id or _TRACEPARENT_LABEL not in parent_labels:
                    flow_context = FlowRunContext.get()
                    flow_run = getattr(flow_context, "flow_run", None)
                    traceparent = (getattr(flow_run, "labels", None) or {}).get(_TRACEPARENT_LABEL)
                    if traceparent and str(getattr(flow_run, "id", "")) == str(run.flow_run_id):
                        labels[_TRACEPARENT_LABEL] = traceparent  # Prefect replaces it with the task's own
        except Exception as exc:  # noqa: BLE001
            _warn_once("run-parent", f"otel-decisions: could not restore a task run's trace parent: {exc!r}")
        return wrapped(*args, **kwargs)

    def _end_run_span(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        """Stamp ``decision.flow.captured`` on the run span: the decisions this process recorded for
        the flow run since the last stamp. A flow span always carries it; a task span when its process
        recorded any (in a process-pool or Dask worker, the flow's process never sees them). The
        counts of a flow run's spans add up to what it recorded, in however many processes."""
        try:
            span = instance.span
            attributes = getattr(span, "attributes", None) or {}
            run_type = attributes.get(semconv.PREFECT_RUN_TYPE)
            if span is not None and run_type == "flow":
                span.set_attribute(
                    semconv.DECISION_FLOW_CAPTURED, registry.pop_flow(str(attributes.get(semconv.PREFECT_RUN_ID)))
                )
                record_checkpoint()
            elif span is not None and run_type == "task":
                flow_run_id = prefect_identity().get(semconv.PREFECT_FLOW_RUN_ID)
                captured = registry.pop_flow(flow_run_id) if flow_run_id else 0
                if captured:
                    span.set_attribute(semconv.PREFECT_FLOW_RUN_ID, flow_run_id)
                    span.set_attribute(semconv.DECISION_FLOW_CAPTURED, captured)
        except Exception as exc:  # noqa: BLE001
            _warn_once("flow-count", f"otel-decisions: could not stamp the flow's decision count: {exc!r}")
        return wrapped(*args, **kwargs)


def _note_cached(task_run: Any, record: Any) -> None:
    """A cache hit returning a recorded Decision (a resumed run's scoring task): list it in the flow run's
    artifact; nothing is recorded again."""
    value = getattr(record, "result", None)
    flow_run_id = getattr(task_run, "flow_run_id", None)
    if not (isinstance(value, Decision) and value.timestamp_ns is not None and flow_run_id is not None):
        return
    if not _runtime.get_runtime().settings.flow_artifacts:
        return
    card = decision_card(value)
    if card is not None:
        registry.add_earlier(value.id, value.span_context, value.timestamp_ns, card, str(flow_run_id))


def _not_an_end(exc: BaseException | None) -> bool:
    """Not an end to list: the run suspends (it runs again when resumed), is cancelled or timed out, or
    the process is stopping (a BaseException that is not an Exception: no API call is made then)."""
    return exc is not None and not isinstance(exc, Exception)


def _trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _flow_ended(engine: Any, exc: BaseException | None) -> None:
    """The flow function returned or raised: the run's decision artifacts (sync flows). Never raises."""
    try:
        if not _not_an_end(exc):
            _artifacts.publish(engine.flow_run, engine.flow, _trace_id())
    except Exception as err:  # noqa: BLE001
        _warn_once("artifacts-hook", f"otel-decisions: could not make the flow run's decision artifacts: {err!r}")


async def _aflow_ended(engine: Any, exc: BaseException | None) -> None:
    """The async flow function returned or raised: the run's decision artifacts. Never raises."""
    try:
        if not _not_an_end(exc):
            await _artifacts.apublish(engine.flow_run, engine.flow, _trace_id())
    except Exception as err:  # noqa: BLE001
        _warn_once("artifacts-hook", f"otel-decisions: could not make the flow run's decision artifacts: {err!r}")


def _remember_masked_parameters(run: Any, parameters: Any) -> None:
    """Values the policy masks in a run's parameters are masked in its spans and its flow run's."""
    try:
        if not parameters or run is None:
            return
        values = masked_parameter_values(_runtime.get_runtime().privacy, parameters)
        if values:
            flow_run_id = getattr(run, "flow_run_id", None)  # a task run's flow run
            run_values.add((str(run.id), str(flow_run_id) if flow_run_id else None), values)
    except FieldError as exc:
        _runtime.warn_bad_settings(exc)
    except Exception as exc:  # noqa: BLE001
        _warn_once("run-values", f"otel-decisions: could not read a run's parameters for scrubbing: {exc!r}")


def _rebuild_without(result: Any, field: str, kwargs: dict[str, Any]) -> Decision | None:
    """Build the decision again with the invalid *field* left out (its raw value stays in the output)."""
    import dataclasses

    mapping = as_mapping(result)
    if mapping is None:
        return None
    drop = set(kwargs["confidence_fields"] or DEFAULT_CONFIDENCE_FIELDS) if field == "confidence" else {field}
    cleaned = {key: value for key, value in mapping.items() if key not in drop}
    try:
        built = decision_from_value(cleaned, **kwargs, require_confidence=False)
    except ValueError:
        return None
    return dataclasses.replace(built, output=result) if built is not None else None
