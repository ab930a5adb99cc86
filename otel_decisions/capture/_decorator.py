"""``@decision``: record the return value of a function called inside a task.

Example::

    from otel_decisions import decision

    @decision(type="clinical.triage", model_version="1.4.0")
    def classify(features: dict) -> dict: ...
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeVar, overload

from otel_decisions import _runtime, semconv
from otel_decisions.capture._model import _DECISION_FIELDS
from otel_decisions.capture._record import emit
from otel_decisions.capture._shape import decision_from_value
from otel_decisions.errors import DecisionValidationError, FieldError, OtelDecisionsError

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("otel_decisions")


@overload
def decision(fn: F, /) -> F: ...
@overload
def decision(fn: None = None, /, **defaults: Any) -> Callable[[F], F]: ...


def decision(fn: Callable[..., Any] | None = None, /, **defaults: Any) -> Any:
    """Decorate a function (called inside a task) whose return value is the decision.

    The function's bound arguments become ``inputs``; its return value may be a
    :class:`Decision`, a decision-shaped mapping / model / dataclass, or a plain outcome
    (str). Keyword arguments (``type=...``, ``model_version=...``) fill fields the return
    value leaves empty. The function's return value is passed through unchanged.
    """
    unknown = sorted(set(defaults) - _DECISION_FIELDS)
    if unknown:
        raise DecisionValidationError(
            "@decision", f"unknown field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(_DECISION_FIELDS))}"
        )

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)
        dtype = defaults.get("type") or f"{func.__module__}.{func.__qualname__}"

        def capture(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> None:
            try:
                bound = signature.bind_partial(*args, **kwargs)
                bound.apply_defaults()
                inputs = dict(bound.arguments)
                built = decision_from_value(
                    result,
                    inputs=inputs,
                    defaults={**defaults, "type": dtype},
                    outcome_fields=None,
                    confidence_fields=None,
                    require_confidence=False,
                )
                if built is None:
                    _runtime.warn_once(
                        f"decorator-shape:{dtype}",
                        f"otel-decisions: @decision function {func.__qualname__} returned a "
                        f"{type(result).__name__} with no outcome field; nothing recorded. Return a Decision, "
                        "a str outcome, or a mapping with an 'outcome' field.",
                    )
                    return
                emit(built, semconv.DecisionSource.DECORATOR, True)
            except OtelDecisionsError as exc:
                if isinstance(exc, FieldError):  # bad settings: said once
                    _runtime.warn_once(f"decorator:{exc.field}", f"otel-decisions: @decision recording is off: {exc}")
                else:  # the store refused this record: every one is reported
                    logger.error("otel-decisions: the decision of %s was not recorded: %s", func.__qualname__, exc)
            except Exception as exc:  # noqa: BLE001 - never break the user's function
                _runtime.warn_once(
                    f"decorator:{dtype}:{type(exc).__name__}",
                    f"otel-decisions: could not record the decision of {func.__qualname__}: {exc}",
                )

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                result = await func(*args, **kwargs)
                capture(args, kwargs, result)
                return result

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = func(*args, **kwargs)
            capture(args, kwargs, result)
            return result

        return wrapper

    if fn is not None:
        return wrap(fn)
    return wrap
