"""The README's tables are generated from the code, and what the README promises exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_tables_match_semconv_queries_and_settings():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_tables.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_attribute_query_and_setting_is_in_the_readme():
    from otel_decisions import semconv
    from otel_decisions.settings import ENV_PREFIX, DecisionSettings
    from otel_decisions.catalogue import load_catalogue

    for key in [*semconv.DECISION_ATTRIBUTES, *semconv.REVIEW_ATTRIBUTES, *semconv.EVENT_ATTRIBUTES]:
        assert f"| `{key}` |" in README, key
    for name in load_catalogue():
        assert f"| `{name}` |" in README, name
    for field in DecisionSettings.model_fields:
        assert f"`{ENV_PREFIX}{field.upper()}`" in README, field


def test_readme_opens_with_the_two_commands_and_they_exist():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_configure_takes_every_setting_as_a_keyword():
    import inspect

    import otel_decisions
    from otel_decisions.settings import DecisionSettings

    params = inspect.signature(otel_decisions.configure).parameters
    missing = [name for name in DecisionSettings.model_fields if name not in params]
    assert not missing, f"configure() lacks keywords for {missing}"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())


def test_cli_commands_named_in_the_readme_exist():
    from typer.testing import CliRunner

    from otel_decisions.cli import app

    runner = CliRunner()
    for command in re.findall(r"otel-decisions ((?:query|schema|models|delivery|db|hold|retention|incident) [a-z]+)", README):
        words = command.split()
        result = runner.invoke(app, [*words, "--help"])
        assert result.exit_code == 0, f"`otel-decisions {command}` in README: {result.output}"
    for command in re.findall(r"otel-decisions (demo|serve|export-trace|verify|erase|correct|notice|reconcile)\b", README):
        assert runner.invoke(app, [command, "--help"]).exit_code == 0, command


def test_the_regulator_questions_table_names_real_tested_commands():
    from otel_decisions.catalogue import load_catalogue

    table = README.split("<!-- BEGIN questions -->", 1)[1].split("<!-- END questions -->", 1)[0]
    rows = [line.split(" | ") for line in table.strip().splitlines()[2:]]
    assert [int(row[0].strip("| ")) for row in rows] == list(range(1, 19))
    catalogue = load_catalogue()
    tests = "\n".join(path.read_text() for path in (ROOT / "tests").glob("test_*.py"))
    for row in rows:
        command = row[-1].strip("| `")
        assert row[2].strip(), row  # the regulation is named
        if command == "otel-decisions verify":
            continue
        name = re.match(r"otel-decisions query run (\w+)", command).group(1)
        assert name in catalogue, command
        assert re.search(rf"^def test_{name}(__\w+)?\(", tests, re.M), f"no test checks {name}'s rows"
        for param in re.findall(r"--param (\w+)=", command):
            assert catalogue[name].param(param) is not None, (name, param)
