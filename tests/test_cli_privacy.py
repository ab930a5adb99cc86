"""`otel-decisions pseudonymise` gives the pseudonym record_decision stored, so a subject request can be answered."""

from __future__ import annotations

from typer.testing import CliRunner

from otel_decisions.cli import app
from otel_decisions.settings import load_settings
from otel_decisions.privacy import PrivacyPolicy


def test_pseudonymise_matches_the_capture_pipeline(monkeypatch, tmp_path):
    monkeypatch.setenv("OTEL_DECISIONS_HMAC_KEY", "cli-test-key-0123456789abcdef")
    result = CliRunner().invoke(app, ["pseudonymise", "A-0001"])
    assert result.exit_code == 0, result.output
    expected = PrivacyPolicy.from_settings(load_settings()).pseudonymise("A-0001")
    assert result.output.strip() == expected and "A-0001" not in result.output


def test_pseudonymise_without_a_key_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.delenv("OTEL_DECISIONS_HMAC_KEY", raising=False)
    monkeypatch.setenv("OTEL_DECISIONS_DATA_DIR", str(tmp_path / "empty"))
    result = CliRunner().invoke(app, ["pseudonymise", "A-0001"])
    assert result.exit_code == 2 and "OTEL_DECISIONS_HMAC_KEY" in result.output
    assert not (tmp_path / "empty" / "hmac.key").exists()
