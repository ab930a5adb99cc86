"""The record's life after it is written: retention and disposal, legal holds, erasure, access audit, incidents.

Every operation here is itself recorded (who, when, why) and nothing is updated in place:
holds are rows placed and released, disposals and erasures leave signed tombstones that
``otel-decisions verify`` checks, reads are logged to ``access_log``.

Example::

    from otel_decisions.lifecycle import apply_retention, place_hold
    place_hold(client, "subject", [pseudonym], reason="litigation", reference="CASE-9", actor="legal")
    apply_retention(client, actor="records-manager", key=key)
"""

from otel_decisions.lifecycle._access import log_access, phi_count
from otel_decisions.lifecycle._holds import SCOPES, Hold, active_holds, hold_history, place_hold, release_hold
from otel_decisions.lifecycle._incidents import close_incident, open_incident
from otel_decisions.lifecycle._operations import (
    LifecycleResult,
    apply_retention,
    due_for_disposal,
    erase_subject,
    record_policy,
)
from otel_decisions.lifecycle._sql import HELD_SQL, PHI_SQL

__all__ = [
    "HELD_SQL",
    "PHI_SQL",
    "SCOPES",
    "Hold",
    "LifecycleResult",
    "active_holds",
    "apply_retention",
    "close_incident",
    "due_for_disposal",
    "erase_subject",
    "hold_history",
    "log_access",
    "open_incident",
    "phi_count",
    "place_hold",
    "record_policy",
    "release_hold",
]
