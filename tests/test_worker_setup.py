"""Whether setup reaches the processes a flow's tasks run in (``instrumentation._workers``): the
guesses the run-time warning rests on, checked in real subprocesses with real task runners."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from otel_decisions.instrumentation import _workers

PROBE = """
import os, sys
from otel_decisions.instrumentation import _workers
{setup}
print("REPEATS", _workers._setup_repeats.get("configure"))
print("CHILDREN", _workers.children_record())
"""


def _run(tmp_path: Path, source: str, *argv: str, **env: str) -> dict[str, str]:
    script = tmp_path / "probe.py"
    script.write_text(source)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PREFECT_PLUGINS"))}
    base.pop("PYTHONPATH", None)
    ran = subprocess.run([sys.executable, *(argv or [str(script)])], env={**base, **env}, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return dict(line.split(" ", 1) for line in ran.stdout.splitlines() if line.startswith(("REPEATS", "CHILDREN")))


def test_setup_at_module_level_repeats_in_spawned_children(tmp_path: Path) -> None:
    setup = "_workers.note_setup_call('configure'); _workers.note_setup_call('instrument')"
    assert _run(tmp_path, PROBE.format(setup=setup)) == {"REPEATS": "True", "CHILDREN": "True"}


def test_setup_under_the_main_guard_or_in_a_main_function_does_not(tmp_path: Path) -> None:
    guarded = textwrap.dedent("""
        def main():
            _workers.note_setup_call('configure'); _workers.note_setup_call('instrument')
        if '__main__' == __name__:
            main()
    """)
    assert _run(tmp_path, PROBE.format(setup=guarded)) == {"REPEATS": "False", "CHILDREN": "False"}


def test_python_c_has_no_main_file_to_run_again(tmp_path: Path) -> None:
    setup = "_workers.note_setup_call('configure'); _workers.note_setup_call('instrument')"
    assert _run(tmp_path, "", "-c", PROBE.format(setup=setup)) == {"REPEATS": "False", "CHILDREN": "False"}


@pytest.mark.parametrize(
    ("env", "children"),
    [
        ({"PREFECT_PLUGINS_ENABLED": "true"}, "True"),
        ({"PREFECT_PLUGINS_ENABLED": "true", "PREFECT_PLUGINS_DENY": "otel_decisions"}, "False"),
        ({"PREFECT_PLUGINS_ENABLED": "true", "OTEL_DECISIONS_PREFECT_PLUGIN": "false"}, "False"),
        ({"PYTHONPATH": "/x/site-packages/opentelemetry/instrumentation/auto_instrumentation"}, "True"),
    ],
)
def test_the_plugin_or_opentelemetry_instrument_reach_children(tmp_path: Path, env: dict[str, str],
                                                               children: str) -> None:
    answer = _run(tmp_path, PROBE.format(setup="if __name__ == '__main__': _workers.note_setup_call('configure')"),
                  **env)
    assert answer["CHILDREN"] == children


def test_out_of_process_task_runners() -> None:
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert _workers.out_of_process(ThreadPoolTaskRunner()) is None
    assert _workers.out_of_process(ProcessPoolTaskRunner()) == "a process pool"
    assert _workers.out_of_process(DaskTaskRunner()) == "a Dask cluster"
    assert _workers.out_of_process(DaskTaskRunner(address="tcp://10.0.0.5:8786")) is None  # cannot be known here


def test_a_guard_with_and_counts_and_its_else_branch_does_not(tmp_path: Path) -> None:
    anded = "if __name__ == '__main__' and True:\n    _workers.note_setup_call('configure'); _workers.note_setup_call('instrument')"
    assert _run(tmp_path, PROBE.format(setup=anded))["REPEATS"] == "False"
    otherwise = ("if __name__ == '__main__':\n    pass\nelse:\n"
                 "    _workers.note_setup_call('configure'); _workers.note_setup_call('instrument')")
    # run as the main module, the else branch never runs: nothing is noted
    assert _run(tmp_path, PROBE.format(setup=otherwise))["REPEATS"] == "None"


def test_python_m_of_a_package_main_is_not_run_again_by_spawned_workers(tmp_path: Path) -> None:
    package = tmp_path / "flows"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(PROBE.format(
        setup="_workers.note_setup_call('configure'); _workers.note_setup_call('instrument')"))
    assert _run(tmp_path, "", "-m", "flows") == {"REPEATS": "False", "CHILDREN": "False"}
