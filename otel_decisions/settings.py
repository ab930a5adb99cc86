"""Settings for otel-decisions: code > ``OTEL_DECISIONS_*`` environment > defaults.

Every setting is a keyword of :func:`otel_decisions.configure` and an environment
variable named ``OTEL_DECISIONS_<FIELD>`` (upper case). List settings take JSON
(``'["otlp","console"]'``) or comma-separated text in the environment.

Example::

    from otel_decisions.settings import DecisionSettings
    settings = DecisionSettings(exporters=["console"], capture_inputs=False)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from otel_decisions.errors import SettingsError

logger = logging.getLogger(__name__)

ENV_PREFIX = "OTEL_DECISIONS_"

ExporterName = Literal["otlp", "console", "clickhouse", "none"]

DEFAULT_DENY_PATTERNS: tuple[str, ...] = (
    # names
    r"(^|_)(first|last|middle|full|given|family|sur|maiden)_?name$",
    r"^name$",
    r"(patient|applicant|customer|client|person|user|holder|account_?holder)_?name$",
    # government, tax and social-insurance ids (US, UK, EU, Canada, Australia, India); keys are also
    # matched in snake_case ("nationalInsuranceNumber" as "national_insurance_number")
    r"ssn",
    r"social_?security",
    r"(national|social)_?insurance",
    # ends at "_", the end or a camelCase boundary: "tinNumber" and "tin_no" are ids, "tiny_loan" is not
    r"(^|_)(tax_?id|tin|itin|passport|national_?id|nin|nino|aadhaa?r|uidai|voter_?id|pesel|curp|hetu|personnummer|steuer_?id|codice_?fiscale|fiscal_?code)(_|$|(?-i:[A-Z0-9]))",
    # short ones only alone or with a number suffix: "sin" and "sin_no" are ids, "sin_wave" is not
    r"(^|_)(sin|tfn|utr|bsn|nir|dni|nie|nif|cpf|ahv)(_?(no|num|number|id|code))?$",
    r"(^|_)tax_?(no|num|number|file_?(no|num|number)?|code|ref(erence)?)$",
    r"(^|_)pan_?(no|num|number|card)$",
    r"driv(er|ing)_?licen[cs]e",
    r"(^|_)(licen[cs]e|id_?card|identity_?card|identity|id)_?(no|num|number)$",
    # dates of birth
    r"(^|_)(dob|date_?of_?birth|birth_?date|birthdate|birthday)$",
    # contact
    r"e_?mail(_?addr(ess)?)?$",
    r"phone(_?(no|num|number))?$",
    r"mobile(_?(no|num|number))?$",
    r"(^|_)fax$",
    r"(^|_)(street|address|addr|postcode|post_code|zip|zip_?code|postal_?code)(_|$)",
    # financial accounts
    r"(^|_)(account|acct|iban|routing|sort_?code|bic|swift|bsb|ifsc|clabe)(_?(no|num|number|id|code))?$",
    r"bank_?account",
    r"(^|_)card(_?(no|num|number))?$",
    r"(credit|debit|payment)_?card",
    r"(^|_)(cvv|cvc|pan)$",
    # health / clinical identifiers
    r"(^|_)mrn$",
    r"(^|_)(patient|member|subscriber|beneficiary|customer|applicant)_?id$",
    r"medical_?record",
    r"(^|_)(nhs|medicare|medicaid|health_?card|ohip|phn|ihi|abha|chi_?(no|num|number))_?(no|num|number|id)?$",
    r"health_?(insurance|service)_?(no|num|number|id)$",
    r"health_?plan",
    # secrets
    r"password",
    r"passwd",
    r"secret",
    r"api_?key",
    r"token",
    r"credential",
    r"private_?key",
    # online and device identifiers (personal data under GDPR)
    r"ip_?address",
    r"(^|_)ip(v4|v6)?(_?addr(ess)?)?$",
    r"remote_?addr",
    r"forwarded_?for",
    r"(^|_)(device_?id|device_?serial|imei|imsi|meid|mac_?addr(ess)?|idfa|idfv|gaid|aaid|advertising_?id|android_?id|udid)$",
)
"""Key patterns (regular expressions, case-insensitive, searched in the key) masked by default."""

DEFAULT_EXCLUDED_SCOPES: tuple[str, ...] = (
    "docket",  # Prefect server's background task queue
    "prefect.server",
    "opentelemetry.instrumentation.fastapi",  # Prefect's API, when opentelemetry-instrument instruments FastAPI
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.instrumentation.starlette",
    "opentelemetry.instrumentation.sqlalchemy",  # the server's database
    "opentelemetry.instrumentation.sqlite3",
    "opentelemetry.instrumentation.asyncpg",
)
"""Instrumentation scopes of Prefect's server and its libraries, not exported by default."""

DEFAULT_OUTCOME_FIELDS: tuple[str, ...] = (
    "decision",
    "outcome",
    "label",
    "prediction",
    "predicted_label",
    "classification",
    "verdict",
    "action",
    "result",
)
DEFAULT_CONFIDENCE_FIELDS: tuple[str, ...] = (
    "confidence",
    "probability",
    "prob",
    "certainty",
    "likelihood",
    "score",
)


def default_data_dir() -> Path:
    """Per-user data directory (``$XDG_DATA_HOME/otel-decisions`` or ``~/.local/share/otel-decisions``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "otel-decisions"


class DecisionSettings(BaseSettings):
    """All otel-decisions settings. Unknown or invalid values raise ``ValueError`` naming the field."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    # --- identity ----------------------------------------------------------------
    service_name: str | None = Field(
        default=None,
        description="service.name of the resource; falls back to OTEL_SERVICE_NAME, then 'otel-decisions-app'.",
    )
    service_version: str | None = Field(default=None, description="service.version of the resource.")
    environment: str | None = Field(
        default=None, description="deployment.environment.name of the resource, e.g. 'production'."
    )

    # --- where records go --------------------------------------------------------
    exporters: Annotated[list[ExporterName], NoDecode] = Field(
        default_factory=lambda: list[ExporterName](["clickhouse"]),
        description="Exporters for spans: otlp (honours OTEL_EXPORTER_OTLP_*), console, clickhouse, none.",
    )
    dsn: str | None = Field(
        default=None,
        description="ClickHouse DSN: chdb:///path (embedded, default under data_dir) or http(s)://user:pass@host:port/db.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory for the embedded database, the delivery spool and the generated HMAC key.",
    )

    # --- capture -----------------------------------------------------------------
    auto_capture: bool = Field(
        default=True, description="Record a decision when a task returns a decision-shaped value."
    )
    capture_inputs: bool = Field(
        default=True,
        description="Record decision.inputs (after the privacy pipeline). Off leaves only decision.inputs.digest.",
    )
    capture_output: bool = Field(default=True, description="Record decision.output (after the privacy pipeline).")
    outcome_fields: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_OUTCOME_FIELDS),
        description="Field names that make a returned value decision-shaped (with a confidence field).",
    )
    confidence_fields: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_CONFIDENCE_FIELDS),
        description="Field names read as the confidence of an auto-captured decision.",
    )
    default_decision_type: str = Field(
        default="task",
        description="decision.type of auto-captured decisions with no type field ('task' uses the task name).",
    )
    auto_capture_batches: bool = Field(
        default=True,
        description="A task returning a DataFrame, a pyarrow Table or a list of decision-shaped rows records one decision per row.",
    )
    batch_subject_id_column: str | None = Field(
        default=None,
        description="Column holding each row's subject id in a batch a task returns (unset: a subject_id or subject column).",
    )
    batch_inputs_include: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Columns of a returned batch recorded as each row's inputs (unset: every column not used for a decision field).",
    )
    batch_inputs_exclude: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Columns of a returned batch never recorded as inputs."
    )

    # --- oversight (the Prefect UI) ------------------------------------------------
    flow_artifacts: bool = Field(
        default=True,
        description="When a flow run ends, a table and a markdown artifact of its decisions on its page in the Prefect UI (masked values only).",
    )
    trace_url: str | None = Field(
        default=None,
        description="Link to a trace in the artifacts, with {trace_id}, e.g. http://jaeger:16686/trace/{trace_id}. Unset: the command that exports it.",
    )

    # --- privacy -----------------------------------------------------------------
    privacy_mode: Literal["denylist", "allowlist"] = Field(
        default="denylist",
        description="denylist: mask keys matching privacy_deny_patterns; allowlist: mask every key not matching privacy_allow_patterns.",
    )
    privacy_deny_patterns: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_DENY_PATTERNS),
        description="Regular expressions (case-insensitive) for keys to mask in denylist mode.",
    )
    privacy_extra_deny_patterns: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Added to privacy_deny_patterns (keeps the defaults)."
    )
    privacy_allow_patterns: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Regular expressions for keys kept in clear in allowlist mode."
    )
    scrub_free_text: bool = Field(
        default=True,
        description="Scrub identifiers from free text: e-mail, phone, SSN, NINO, NHS and other national ids, IBAN, card, IP and MAC addresses, IMEI (format or checksum confirmed).",
    )
    hmac_key: SecretStr | None = Field(
        default=None,
        description="Key for subject/reviewer pseudonyms and the inputs digest. Unset: a random key is generated once in data_dir/hmac.key.",
    )
    retention_policy: dict[str, Any] = Field(
        default_factory=dict,
        description='Retention rules added to or replacing the built-in ones, as JSON: {"class": {"period": "7y", "basis": "...", "obligation": true, "regulations": ["TAG"]}} or {"class": "18m"}.',
    )
    max_value_length: int = Field(
        default=4096,
        ge=64,
        le=10_000_000,
        description="Longest string attribute kept; longer ones are truncated with a marker.",
    )
    max_json_length: int = Field(
        default=65_536,
        ge=256,
        le=50_000_000,
        description="Longest decision.inputs / decision.output JSON kept; longer is truncated (the digest covers the whole).",
    )

    # --- sampling ----------------------------------------------------------------
    always_sample_decisions: bool = Field(
        default=True, description="Decision and review spans are recorded whatever the sampler decides for other spans."
    )

    # --- delivery (durable spool) ------------------------------------------------
    durable: bool = Field(
        default=True, description="Spool decision and review spans to disk before the recording call returns."
    )
    spool_dir: Path | None = Field(default=None, description="Spool directory; default data_dir/spool.")
    commit_interval_ms: float = Field(
        default=50.0,
        ge=0.0,
        le=60_000.0,
        description="Group-commit interval: the spool is fsync'd at least this often.",
    )
    commit_max_records: int = Field(
        default=512, ge=1, le=1_000_000, description="Group commit after this many records."
    )
    strict_fsync: bool = Field(
        default=False, description="The recording call waits until its record is fsync'd (slower, strongest guarantee)."
    )
    spool_quota_bytes: int = Field(
        default=1 << 30, ge=1 << 16, description="Disk quota for the spool; at the quota the quota_policy applies."
    )
    quota_policy: Literal["block", "fail"] = Field(
        default="block",
        description="At the spool quota: block the recording call until space frees, or fail it loudly.",
    )
    quota_block_timeout_s: float | None = Field(
        default=None,
        ge=0.0,
        description="With quota_policy=block, fail loudly after this many seconds (None: wait forever).",
    )
    durable_span_names: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Extra span names (besides decision and review spans) to deliver durably."
    )
    excluded_scopes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED_SCOPES),
        description="Instrumentation scopes (name prefixes) whose spans are not exported: by default Prefect's own "
        "server and its libraries (a temporary server runs inside the flow's process). Decision records are never excluded.",
    )
    export_batch_size: int = Field(
        default=512,
        ge=1,
        le=1_000_000,
        description="Spans per export batch (at least: the ClickHouse exporter is handed up to its 10,000-row INSERT).",
    )
    retry_initial_backoff_s: float = Field(default=0.2, gt=0, description="First retry delay of the shipper.")
    retry_max_backoff_s: float = Field(default=30.0, gt=0, description="Cap of the shipper's exponential backoff.")

    # --- the embedded database's users (``otel-decisions serve``) -------------------------
    embedded_admin_password: SecretStr | None = Field(
        default=None,
        description="Password of the embedded database's otel_admin user (unset: generated into its directory).",
    )
    embedded_writer_password: SecretStr | None = Field(
        default=None,
        description="Password of the embedded database's otel_writer user (unset: generated into its directory).",
    )
    embedded_reader_password: SecretStr | None = Field(
        default=None,
        description="Password of the embedded database's otel_reader user (unset: generated into its directory).",
    )

    # --- validators ----------------------------------------------------------------
    @field_validator(
        "exporters",
        "outcome_fields",
        "confidence_fields",
        "privacy_deny_patterns",
        "privacy_extra_deny_patterns",
        "privacy_allow_patterns",
        "durable_span_names",
        "excluded_scopes",
        "batch_inputs_include",
        "batch_inputs_exclude",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(value, tuple):
            return list(value)
        return value

    @field_validator("privacy_deny_patterns", "privacy_extra_deny_patterns", "privacy_allow_patterns")
    @classmethod
    def _valid_regex(cls, value: list[str]) -> list[str]:
        import re

        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {pattern!r}: {exc}; fix or remove it") from exc
        return value

    @field_validator("dsn")
    @classmethod
    def _valid_dsn(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.split(":", 1)[0].lower()
        if scheme not in {"chdb", "http", "https"} or "://" not in value:
            raise ValueError(
                f"unsupported DSN {value!r}: use chdb:///path/to/dir for the embedded database "
                "or http(s)://user:password@host:port/database for a ClickHouse server"
            )
        return value

    @field_validator("trace_url")
    @classmethod
    def _valid_trace_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if "{trace_id}" not in value or not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value!r} is not a trace link: use an http(s) URL with {{trace_id}} in it, "
                "e.g. http://jaeger:16686/trace/{trace_id}"
            )
        return value

    @field_validator("retention_policy")
    @classmethod
    def _valid_retention(cls, value: dict[str, Any]) -> dict[str, Any]:
        from otel_decisions.retention import RetentionPolicy

        try:
            RetentionPolicy.from_settings(value)
        except SettingsError as exc:
            raise ValueError(f"{exc.field}: {exc.problem}") from None
        return value

    @field_validator("privacy_allow_patterns")
    @classmethod
    def _allowlist_needs_patterns(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("privacy_mode") == "allowlist" and not value:
            raise ValueError(
                "privacy_mode='allowlist' needs at least one pattern (set OTEL_DECISIONS_PRIVACY_ALLOW_PATTERNS), "
                "otherwise every input is masked"
            )
        return value

    # --- derived values ---------------------------------------------------------------
    @property
    def resolved_service_name(self) -> str:
        return self.service_name or os.environ.get("OTEL_SERVICE_NAME") or "otel-decisions-app"

    @property
    def resolved_dsn(self) -> str:
        return self.dsn or f"chdb://{(self.data_dir / 'chdb').resolve()}"

    @property
    def resolved_spool_dir(self) -> Path:
        return self.spool_dir or (self.data_dir / "spool")

    @property
    def deny_patterns(self) -> list[str]:
        return [*self.privacy_deny_patterns, *self.privacy_extra_deny_patterns]


def load_settings(**overrides: Any) -> DecisionSettings:
    """Settings from keywords (``None`` means "not given") over the environment over defaults.

    Raises :class:`~otel_decisions.errors.SettingsError` naming the field, its variable and the problem.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    unknown = sorted(set(given) - set(DecisionSettings.model_fields))
    if unknown:
        raise SettingsError(
            unknown[0],
            f"unknown setting(s) {', '.join(unknown)}; known settings are: {', '.join(sorted(DecisionSettings.model_fields))}",
        )
    try:
        return DecisionSettings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        name = str(first["loc"][0]) if first["loc"] else ""
        variable = (
            f" (keyword {name}=, environment {ENV_PREFIX}{name.upper()})"
            if name in DecisionSettings.model_fields
            else ""
        )
        message = str(first["msg"]).removeprefix("Value error, ")
        more = f"; {len(exc.errors()) - 1} more invalid setting(s)" if len(exc.errors()) > 1 else ""
        raise SettingsError(field, f"{message}{variable}{more}") from None
