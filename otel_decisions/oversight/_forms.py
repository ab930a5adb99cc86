"""The review form a reviewer sees in the Prefect UI: a typed ``RunInput`` and its markdown description.

The description shows what the reviewer needs to judge, from the decision as stored (masked values stay
masked): outcome, confidence and score against the threshold, ranked reasons, rationale, model and
version, the inputs, and the decision id. Every value is escaped: a reason or an input cannot inject
markup into Prefect's markdown renderer.

Example::

    form = review_form(cards)           # one decision: action, new outcome, reason, reviewer
    form = review_form(cards)           # several: one block of fields per decision, one reviewer
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Optional

from pydantic import Field, create_model

from otel_decisions import semconv
from otel_decisions.instrumentation._artifacts import md_text as _md_text

ACTIONS = ("approve", "override", "escalate", "reject")
"""What a reviewer may do in the form (``comment`` is not a review of the outcome)."""
Action = Literal["approve", "override", "escalate", "reject"]
MAX_INPUT_ROWS = 40
"""Inputs shown per decision (the rest are counted)."""

_ACTION_HELP = (
    "approve: the outcome stands · override: replace it with the new outcome · escalate: a senior reviewer "
    "decides · reject: the decision must be made again"
)


def md_text(value: Any, limit: int = 500) -> str:
    """*value* as inline markdown text, at most *limit* characters (the artifacts' escaper)."""
    return _md_text(value, limit)


def _number(value: Any) -> str:
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return md_text(value)


@dataclass(frozen=True)
class Card:
    """One decision as the reviewer sees it (values as stored)."""

    decision_id: str
    attributes: Mapping[str, Any]
    """Span attributes (``semconv`` keys); empty when the decision's record could not be read."""
    span: tuple[str, str] | None = None
    """(trace id, span id) of the decision's record, when known."""

    def get(self, key: str) -> Any:
        value = self.attributes.get(key)
        return None if value in (None, "") else value

    @property
    def outcome(self) -> str | None:
        value = self.get(semconv.DECISION_OUTCOME)
        return None if value is None else str(value)

    @property
    def options(self) -> tuple[str, ...]:
        value = self.get(semconv.DECISION_OPTIONS)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return ()
        return tuple(str(v) for v in value or ())


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except ValueError:
            return [value]
        return [str(v) for v in loaded] if isinstance(loaded, list) else [value]
    return [str(v) for v in value]


def _inputs(value: Any) -> tuple[list[tuple[str, str]], int]:
    """(key, value) rows of the stored inputs JSON (nested keys dotted), and how many there were."""
    if value is None:
        return [], 0
    try:
        loaded = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return [("(inputs)", str(value))], 1
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict) and node:
            for key, child in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), child)
        else:
            text = node if isinstance(node, str) else json.dumps(node, ensure_ascii=False, default=str)
            rows.append((prefix or "(value)", text))

    walk("", loaded)
    return rows[:MAX_INPUT_ROWS], len(rows)


def describe(card: Card, heading: str) -> str:
    """The markdown block for one decision."""
    g = card.get
    lines = [f"### {heading}", ""]
    if not card.attributes:
        lines += [
            f"Decision `{card.decision_id}`: its record is not readable from this process. Look it up with "
            f"`otel-decisions query run decision_detail --param decision_id={card.decision_id}` before you answer.",
            "",
        ]
        return "\n".join(lines)
    confidence, score, threshold = (
        g(semconv.DECISION_CONFIDENCE),
        g(semconv.DECISION_SCORE),
        g(semconv.DECISION_THRESHOLD),
    )
    judged = score if score is not None else confidence
    against = ""
    if threshold is not None and judged is not None:
        try:
            side = "at or above" if float(judged) >= float(threshold) else "below"
            gap = abs(float(judged) - float(threshold))
            against = f"{'score' if score is not None else 'confidence'} {_number(judged)} is {side} the threshold {_number(threshold)} (by {gap:.3f})"
        except (TypeError, ValueError):
            against = ""
    model = " ".join(md_text(v) for v in (g(semconv.DECISION_MODEL_NAME), g(semconv.DECISION_MODEL_VERSION)) if v)
    rows = [
        (
            "Outcome",
            f"**{md_text(card.outcome or '—')}**"
            + (f" (options: {', '.join(md_text(o) for o in card.options)})" if card.options else ""),
        ),
        ("Confidence", _number(confidence) if confidence is not None else "—"),
        ("Score", _number(score) if score is not None else "—"),
        ("Threshold", (_number(threshold) if threshold is not None else "—") + (f": {against}" if against else "")),
        ("Model", model or "—"),
        ("Policy", md_text(g(semconv.DECISION_POLICY_VERSION) or "—")),
        ("Decision type", md_text(g(semconv.DECISION_TYPE) or "—")),
        ("Automation", md_text(g(semconv.DECISION_AUTOMATION) or "—")),
        ("Decision id", f"`{card.decision_id}`"),
    ]
    lines += ["| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows), ""]
    reasons = _list(g(semconv.DECISION_REASONS))
    if reasons:
        lines += ["**Principal reasons, ranked**", "", *(f"{i}. {md_text(r)}" for i, r in enumerate(reasons, 1)), ""]
    rationale = g(semconv.DECISION_RATIONALE)
    if rationale:
        lines += [f"**Rationale:** {md_text(rationale, 1500)}", ""]
    inputs, total = _inputs(g(semconv.DECISION_INPUTS))
    if inputs:
        lines += ["**Inputs** (as recorded: masked values stay masked)", "", "| input | value |", "|---|---|"]
        lines += [f"| {md_text(k, 120)} | {md_text(v, 200)} |" for k, v in inputs]
        if total > len(inputs):
            lines.append(f"| … | {total - len(inputs)} more inputs |")
        lines.append("")
    return "\n".join(lines)


def description(cards: Sequence[Card], *, due_at: datetime | None, note: str | None = None) -> str:
    """The whole form's markdown: what is asked, each decision, and how the answer is recorded."""
    many = len(cards) > 1
    head = [
        f"## Human review of {len(cards)} AI decisions" if many else "## Human review of an AI decision",
        "",
        "Your answer is recorded as a `decision.review` linked to the decision (EU AI Act Art. 14, GDPR Art. 22(3)): "
        "your user id as a pseudonym, your reason scrubbed of identifiers. An override needs the new outcome.",
    ]
    if due_at is not None:
        head.append(
            f"Answer by **{due_at.astimezone(UTC).strftime('%Y-%m-%d %H:%M UTC')}**: after that the "
            "request expires, and that is recorded too (no review is not an approval)."
        )
    if note:
        head += ["", f"> **{md_text(note, 600)}**"]
    blocks = [
        describe(card, f"{i} · {md_text(card.outcome or '?')}" if many else "The decision")
        for i, card in enumerate(cards, 1)
    ]
    return "\n".join([*head, "", *blocks])


def _outcome_help(card: Card) -> str:
    options = [o for o in card.options if o != card.outcome]
    return (
        "Required for an override" + (f": one of {', '.join(md_text(o, 80) for o in options)}" if options else "") + "."
    )


def review_form(cards: Sequence[Card]) -> Any:
    """The ``RunInput`` class for *cards*: one decision gets ``action``, ``new_outcome``, ``reason``,
    ``reviewer``; several get ``d<N>_action``, ``d<N>_new_outcome``, ``d<N>_reason`` each, and one
    ``reviewer`` and a ``reason`` for decisions without their own."""
    from prefect.input import RunInput

    fields: dict[str, Any] = {}
    if len(cards) == 1:
        card = cards[0]
        fields["action"] = (Action, Field(title="Action", description=_ACTION_HELP))
        fields["new_outcome"] = (
            Optional[str],
            Field(default=None, title="New outcome", description=_outcome_help(card)),
        )  # noqa: UP045 - the form renders Optional
        fields["reason"] = (
            str,
            Field(title="Reason", description="Why: recorded with the review (identifiers are scrubbed)."),
        )
    else:
        for i, card in enumerate(cards, 1):
            fields[f"d{i}_action"] = (
                Action,
                Field(title=f"{i} · Action", description=f"Decision {card.decision_id}. {_ACTION_HELP}"),
            )
            fields[f"d{i}_new_outcome"] = (
                Optional[str],
                Field(default=None, title=f"{i} · New outcome", description=_outcome_help(card)),
            )  # noqa: UP045
            fields[f"d{i}_reason"] = (
                Optional[str],
                Field(default=None, title=f"{i} · Reason", description="Leave empty to use the reason below."),
            )  # noqa: UP045
        fields["reason"] = (
            str,
            Field(title="Reason", description="Why, for every decision without its own reason (scrubbed)."),
        )
    fields["reviewer"] = (
        str,
        Field(title="Reviewer", description="Your user id: stored as a pseudonym, never in clear."),
    )
    name = "DecisionReview" if len(cards) == 1 else "DecisionReviews"
    return create_model(name, __base__=RunInput, **fields)


@dataclass(frozen=True)
class Answer:
    """What the reviewer answered for one decision."""

    action: str
    new_outcome: str | None
    reason: str


def answers(cards: Sequence[Card], response: Any) -> tuple[list[Answer], str, list[str]]:
    """The per-decision answers in a submitted form, the reviewer, and what is wrong with it (empty: valid)."""
    values = response.model_dump() if hasattr(response, "model_dump") else dict(response)
    reviewer = str(values.get("reviewer") or "").strip()
    problems: list[str] = [] if reviewer else ["Reviewer is empty: enter your user id."]
    shared = str(values.get("reason") or "").strip()
    out: list[Answer] = []
    for i, card in enumerate(cards, 1):
        prefix = "" if len(cards) == 1 else f"d{i}_"
        label = "" if len(cards) == 1 else f"{i}: "
        action = str(values.get(f"{prefix}action") or "")
        new_outcome = (str(values.get(f"{prefix}new_outcome") or "").strip()) or None
        reason = (str(values.get(f"{prefix}reason") or "").strip() if prefix else "") or shared
        if action not in ACTIONS:
            problems.append(f"{label}Action {action!r} is not one of {', '.join(ACTIONS)}.")
        if action == "override":
            if new_outcome is None:
                problems.append(f"{label}An override needs the new outcome.")
            elif card.options and new_outcome not in card.options:
                problems.append(f"{label}New outcome {new_outcome!r} is not one of {', '.join(card.options)}.")
            elif new_outcome == card.outcome:
                problems.append(
                    f"{label}New outcome {new_outcome!r} is the decision's own outcome: approve it instead."
                )
        if not reason:
            problems.append(f"{label}Reason is empty: say why.")
        out.append(Answer(action, new_outcome if action == "override" else None, reason))
    return out, reviewer, problems
