"""Run-span scrubbing: spans that are not decision records (Prefect's run spans, the instrumentor's
own) lose the values masked for their run (:mod:`._runs`), e-mail / SSN / phone / card patterns and
deny-listed keys before any exporter sees them.

Example::

    from otel_decisions.privacy import scrub_span

    clean = scrub_span(policy, span, run_values.get(run_id))  # the span itself when nothing changed
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from otel_decisions.privacy._detect import scrub_identifiers
from otel_decisions.privacy._policy import _SENTINEL, PrivacyPolicy, valid_text

_ID_KEYS = frozenset({"decision.id", "decision.review.id", "decision.chain.id", "trace_id", "span_id"})


def _scrub_attribute_values(
    policy: PrivacyPolicy, attributes: Any, values: tuple[str, ...] = ()
) -> tuple[dict[str, Any], bool]:
    """Attribute values of a non-decision span through the key policy (deny-list) and free-text patterns."""
    changed = False
    out: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key in _ID_KEYS or (key.startswith("prefect.") and key.endswith(".id")):
            out[key] = value  # run, state and decision ids: not personal, and what reconcile joins on
            continue
        # The whole key: a namespaced key such as prefect.flow.name or service.name is not a
        # person's name, while an application label such as "ssn" or "user.email" is masked.
        if policy.mode == "denylist" and policy.is_masked_key(key):
            out[key] = _SENTINEL
            changed = True
            continue
        if type(value) is str:
            scrubbed = _scrub_run_text(policy, value, values)
            changed = changed or scrubbed is not value
            out[key] = scrubbed
        elif isinstance(value, tuple) and any(type(v) is str for v in value):
            scrubbed_items = tuple(_scrub_run_text(policy, v, values) if type(v) is str else v for v in value)
            changed = changed or any(a is not b for a, b in zip(scrubbed_items, value, strict=True))
            out[key] = scrubbed_items
        else:
            out[key] = value
    return out, changed


def _scrub_run_text(policy: PrivacyPolicy, text: str, values: tuple[str, ...] = ()) -> str:
    """The run's masked *values* (longest first), then free-text patterns, out of one run-span string,
    made valid UTF-8; *text* itself when unchanged."""
    scrubbed = text
    for value in values:
        if value in scrubbed:
            scrubbed = scrubbed.replace(value, _SENTINEL)
    if policy.scrub_free_text:
        scrubbed = scrub_identifiers(scrubbed)
    scrubbed = valid_text(scrubbed)  # an exception message may hold undecodable bytes
    return text if scrubbed == text else scrubbed


def scrub_span(policy: PrivacyPolicy, span: Any, values: Iterable[str] = ()) -> Any:
    """A copy of a span that is *not* a decision record (Prefect's run spans, the instrumentor's own),
    with the run's masked *values* and free-text identifiers removed from its name, attributes,
    events (exception messages and stack traces, state messages), link attributes and status text,
    and deny-listed keys masked.

    Decision and review spans never come here: they were built from the privacy pipeline.
    Returns *span* itself when nothing needed scrubbing.
    """
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link, Status

    known = tuple(sorted(values, key=len, reverse=True))
    attributes, changed = _scrub_attribute_values(policy, span.attributes, known)
    name = _scrub_run_text(policy, span.name, known)
    changed = changed or name is not span.name
    events = []
    for event in span.events:
        event_attributes, event_changed = _scrub_attribute_values(policy, event.attributes, known)
        event_name = _scrub_run_text(policy, event.name, known)
        if event_changed or event_name is not event.name:
            changed = True
            event = Event(event_name, event_attributes, event.timestamp)
        events.append(event)
    links = []
    for link in span.links:
        link_attributes, link_changed = _scrub_attribute_values(policy, link.attributes, known)
        if link_changed:
            changed = True
            link = Link(link.context, link_attributes)
        links.append(link)
    status = span.status
    description = status.description
    if description:
        scrubbed_description = _scrub_run_text(policy, description, known)
        if scrubbed_description is not description:
            changed = True
            status = Status(status.status_code, scrubbed_description)
    if not changed:
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
