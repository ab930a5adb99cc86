"""``otel-decisions pseudonymise``: the pseudonym a raw identifier is stored under (for subject requests)."""

from __future__ import annotations

from typing import Annotated

import typer

from otel_decisions.cli._common import console, handle_errors


def register(app: typer.Typer) -> None:
    """Add the ``pseudonymise`` command to *app*."""

    @app.command("pseudonymise")
    @handle_errors
    def pseudonymise(
        identifier: Annotated[str, typer.Argument(help="The raw subject or reviewer id, e.g. an applicant number.")],
    ) -> None:
        """Print the HMAC pseudonym of IDENTIFIER under the configured key (OTEL_DECISIONS_HMAC_KEY or the data directory's key).

        Use it to answer a data subject's request: otel-decisions query run subject_decisions --param subject_id=$(otel-decisions pseudonymise A-0001)
        """
        from otel_decisions.errors import OtelDecisionsError
        from otel_decisions.privacy import PrivacyPolicy
        from otel_decisions.settings import load_settings

        settings = load_settings()
        if settings.hmac_key is None and not (settings.data_dir / "hmac.key").exists():
            raise OtelDecisionsError(
                "no HMAC key: set OTEL_DECISIONS_HMAC_KEY (or OTEL_DECISIONS_DATA_DIR to the directory holding "
                "hmac.key) to the key the decisions were recorded with"
            )
        console.print(PrivacyPolicy.from_settings(settings).pseudonymise(identifier), soft_wrap=True, highlight=False)
