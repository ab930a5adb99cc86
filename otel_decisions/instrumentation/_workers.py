"""Whether the other processes Prefect starts for a flow will record, and a loud warning when not.

A flow's tasks can run outside the process that was set up: in a ``ProcessPoolTaskRunner`` or a
local ``DaskTaskRunner`` cluster (spawned worker processes), and every flow run that ``serve()``
starts runs in its own subprocess. Those processes record only when something sets them up:

- the Prefect plugin (``PREFECT_PLUGINS_ENABLED=true``, inherited by every child process);
- ``opentelemetry-instrument`` (its ``sitecustomize`` on the inherited ``PYTHONPATH``);
- ``configure()`` and ``instrument()`` at module level: a spawned worker runs the main module
  again (as ``__mp_main__``) and a served flow run imports the flow's file, but neither runs what
  is under ``if __name__ == "__main__":``.

:func:`note_setup_call` remembers, when ``configure()`` / ``instrument()`` is called, whether the
call sits under that guard; :func:`warn_if_workers_unrecorded` warns once per flow and runner when
none of the three applies. What slips through anyway (a remote Dask cluster, a worker host without
the package) is what ``otel-decisions reconcile`` finds, against Prefect's own task runs.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
from functools import lru_cache
from types import FrameType
from typing import Any

PLUGIN_NAME = "otel_decisions"
"""The plugin's name in the ``prefect.plugins`` entry-point group (``PREFECT_PLUGINS_ALLOW/DENY``)."""

PLUGIN_DISABLE_ENV = "OTEL_DECISIONS_PREFECT_PLUGIN"
"""Set to ``false`` to keep the plugin installed but inactive in a process."""

_OFF = ("0", "false", "no", "off")
_AUTO_INSTRUMENTATION_DIR = "opentelemetry/instrumentation/auto_instrumentation"

_setup_repeats: dict[str, bool] = {}
"""``"configure"`` / ``"instrument"`` -> whether that call runs again in a spawned child process."""

_OUT_OF_PROCESS_RUNNERS = {
    ("prefect.task_runners", "ProcessPoolTaskRunner"): "a process pool",
    ("prefect_dask.task_runners", "DaskTaskRunner"): "a Dask cluster",
    ("prefect_ray.task_runners", "RayTaskRunner"): "a Ray cluster",
}


def note_setup_call(kind: str) -> None:
    """Remember whether the ``configure()`` / ``instrument()`` call being made runs again in a spawned
    child process (at module level: yes; under ``if __name__ == "__main__":`` or in ``python -c``: no)."""
    try:
        _setup_repeats[kind] = _repeats_in_children(inspect.currentframe())
    except Exception:  # noqa: BLE001 - a guess about setup must never break it
        _setup_repeats[kind] = False


def _repeats_in_children(frame: FrameType | None) -> bool:
    outermost: FrameType | None = None
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            outermost = frame
        frame = frame.f_back
    if outermost is None:
        return False  # called later, from a function: nothing in a child process calls it again
    filename = outermost.f_code.co_filename
    if not os.path.isfile(filename):
        return False  # python -c, stdin, a notebook: a child has no main file to run again
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    spec_name = getattr(spec, "name", "") or ""
    if spec_name == "__main__" or spec_name.endswith(".__main__"):
        return False  # python -m pkg / python dir/: spawn does not run a package's __main__ again
    return not _in_main_guard(filename, outermost.f_lineno)


@lru_cache(maxsize=16)
def _main_guards(filename: str) -> tuple[tuple[int, int], ...]:
    """Line ranges of every ``if __name__ == "__main__":`` block in *filename*."""
    with open(filename, "rb") as source:
        tree = ast.parse(source.read(), filename)
    ranges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.body:
            # the test line and the body (not an `else:` branch, which does run in a child)
            ranges.append((node.lineno, node.body[-1].end_lineno or node.body[-1].lineno))
    return tuple(ranges)


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round), also as one operand of an ``and``."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_is_main_test(value) for value in test.values)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    constants = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and constants == ["__main__"]


def _in_main_guard(filename: str, lineno: int | None) -> bool:
    if lineno is None:
        return True
    return any(start <= lineno <= end for start, end in _main_guards(filename))


def plugin_switched_off() -> bool:
    """Whether ``OTEL_DECISIONS_PREFECT_PLUGIN`` turns the installed plugin off in this process."""
    return os.environ.get(PLUGIN_DISABLE_ENV, "").strip().lower() in _OFF


def plugin_reaches_children() -> bool:
    """Whether processes started from this one load the Prefect plugin (they inherit its settings)."""
    if plugin_switched_off():
        return False
    from prefect.settings import get_current_settings

    plugins = get_current_settings().plugins
    if not plugins.enabled:
        return False
    if plugins.allow and PLUGIN_NAME not in plugins.allow:
        return False
    return not (plugins.deny and PLUGIN_NAME in plugins.deny)


def auto_instrumentation_reaches_children() -> bool:
    """Whether this process runs under ``opentelemetry-instrument`` (children inherit its PYTHONPATH)."""
    return any(
        path.replace(os.sep, "/").rstrip("/").endswith(_AUTO_INSTRUMENTATION_DIR)
        for path in os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if path
    )


def children_record() -> bool:
    """Whether a process started from this one (spawned, or a served flow run) will record."""
    if auto_instrumentation_reaches_children() or plugin_reaches_children():
        return True
    return bool(_setup_repeats) and all(_setup_repeats.get(kind, False) for kind in ("configure", "instrument"))


def out_of_process(task_runner: Any) -> str | None:
    """What runs a flow's tasks outside its process ("a process pool", ...), or ``None``.

    A Dask runner given the address of an existing cluster is ``None``: whether its workers record
    cannot be known from here (``reconcile`` answers that)."""
    for cls in type(task_runner).__mro__:
        where = _OUT_OF_PROCESS_RUNNERS.get((cls.__module__, cls.__qualname__))
        if where is not None:
            if getattr(task_runner, "address", None):
                return None
            return where
    return None


_SETUP_HELP = (
    "Enable the Prefect plugin (PREFECT_PLUGINS_ENABLED=true, in the environment of the process that "
    "starts them), run under opentelemetry-instrument, or call configure() and instrument() at module "
    'level rather than under `if __name__ == "__main__":`.'
)


def unrecorded_workers_message(flow_name: str, where: str) -> str:
    return (
        f"otel-decisions: flow {flow_name!r} runs its tasks in {where}, whose worker processes are not set up "
        f"to record: decisions made there will be missing. {_SETUP_HELP} "
        "`otel-decisions reconcile --flow-run ID` lists the task runs that were not recorded."
    )


def unrecorded_served_runs_message(names: list[str]) -> str:
    flows = ", ".join(repr(name) for name in names) or "these deployments"
    return (
        f"otel-decisions: the flow runs this process serves ({flows}) run in their own subprocesses, which "
        f"are not set up to record: their decisions will be missing. {_SETUP_HELP} "
        "`otel-decisions reconcile --flow-run ID` lists the task runs that were not recorded."
    )
