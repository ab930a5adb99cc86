"""Retention policy: how long each decision record must be kept, and under which obligation.

A policy is a set of rules, each a retention class with a period, the obligation it comes from
(its *basis*) and whether that is a legal obligation to keep the record (which an erasure request
cannot override: GDPR Art. 17(3)(b)). A decision's ``retain_until`` is computed when it is
recorded, as the longest period of every rule that applies to it: the rule named by its
``retention_class`` and the rules its ``regulations`` imply (``FINRA-4511`` implies the FINRA
rule). It is stored on the record (inside the hash chain), so a later policy change applies to
decisions recorded after it; a record that must be kept longer is put on a legal hold.

Built-in rules (``OTEL_DECISIONS_RETENTION_POLICY`` adds or replaces rules, as JSON)::

    finra-6y       6 years    FINRA Rule 4511(b); SEC Rule 17a-4(a) / (b)(4)
    hipaa-6y       6 years    HIPAA 45 CFR 164.316(b)(2)(i)
    reg-b-25m      25 months  Reg B 12 CFR 1002.12(b)(1)
    eu-ai-act-6m   6 months   EU AI Act Art. 19(1), Art. 26(6)
    standard       12 months  GDPR Art. 5(1)(e): internal policy, no legal obligation (erasable)

A record whose ``retention_class`` no rule names has no ``retain_until``: it is kept until the
policy names its class (never disposed by guesswork) and ``configure()`` warns.

Example::

    from otel_decisions.retention import RetentionPolicy
    policy = RetentionPolicy.from_settings({"trading-7y": {"period": "7y", "basis": "MiFID II Art. 16(6)"}})
    term = policy.term(decided_at, "trading-7y", ["FINRA-4511"])
    term.retain_until, term.basis
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from otel_decisions.errors import SettingsError

__all__ = ["RetentionRule", "RetentionTerm", "RetentionPolicy", "DEFAULT_RULES", "parse_period", "add_months"]

_PERIOD = re.compile(r"^\s*(\d+)\s*(y|m|d)\s*$", re.IGNORECASE)
SETTING = "retention_policy"


def parse_period(text: str, field: str = SETTING) -> tuple[int, int]:
    """``'6y'`` / ``'25m'`` / ``'180d'`` as (months, days)."""
    match = _PERIOD.match(str(text))
    if not match:
        raise SettingsError(field, f"period {text!r} is not like '6y', '25m' or '180d' (years, months, days)")
    number, unit = int(match.group(1)), match.group(2).lower()
    if unit == "y":
        return number * 12, 0
    if unit == "m":
        return number, 0
    return 0, number


def add_months(day: date, months: int) -> date:
    """*day* plus *months* calendar months (the 31st becomes the month's last day)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover - 28 always exists


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass(frozen=True)
class RetentionRule:
    """One retention class: how long, why, and whether the law requires it (then erasure keeps it)."""

    name: str
    months: int
    days: int
    basis: str
    obligation: bool
    regulations: tuple[str, ...] = ()
    """Regulation tags (in ``decision.regulations``) that imply this rule, compared without case or punctuation
    as prefixes: ``FINRA`` matches ``FINRA-4511``."""

    def until(self, day: date) -> date:
        from datetime import timedelta

        return add_months(day, self.months) + timedelta(days=self.days)

    def period_text(self) -> str:
        if self.days:
            return f"{self.days}d" if not self.months else f"{self.months}m+{self.days}d"
        return f"{self.months // 12}y" if self.months % 12 == 0 else f"{self.months}m"

    def as_json(self) -> dict[str, Any]:
        return {
            "period": self.period_text(),
            "basis": self.basis,
            "obligation": self.obligation,
            "regulations": list(self.regulations),
        }


DEFAULT_RULES: tuple[RetentionRule, ...] = (
    RetentionRule(
        "finra-6y",
        72,
        0,
        "FINRA Rule 4511(b); SEC Rule 17a-4(a)/(b)(4): six years, the first two easily accessible",
        True,
        ("FINRA", "SEC-17a-4", "SEC17a4"),
    ),
    RetentionRule("hipaa-6y", 72, 0, "HIPAA 45 CFR 164.316(b)(2)(i): six years", True, ("HIPAA",)),
    RetentionRule(
        "reg-b-25m",
        25,
        0,
        "Reg B 12 CFR 1002.12(b)(1): 25 months after notice of action",
        True,
        ("ECOA", "RegB", "Reg-B"),
    ),
    RetentionRule(
        "eu-ai-act-6m",
        6,
        0,
        "EU AI Act Art. 19(1) and Art. 26(6): logs kept at least six months",
        True,
        ("EU-AI-Act", "EUAIAct", "AI-Act"),
    ),
    RetentionRule(
        "standard",
        12,
        0,
        "GDPR Art. 5(1)(e) storage limitation: internal policy, no legal obligation to keep",
        False,
    ),
)
DEFAULT_CLASS = "standard"
"""The rule for a decision with no retention class whose regulations imply no rule."""


@dataclass(frozen=True)
class RetentionTerm:
    """What the policy says about one decision."""

    retain_until: date | None
    """``None``: its class is not in the policy, so it is kept until the policy names it."""
    basis: str
    obligation: bool
    rules: tuple[str, ...]
    obligation_until: date | None = None
    """The end of the longest legal obligation (``None``: none applies, or the class is unknown)."""


def _rule_from_json(name: str, spec: Any) -> RetentionRule:
    field = f"{SETTING}[{name!r}]"
    if isinstance(spec, str):
        spec = {"period": spec}
    if not isinstance(spec, Mapping):
        raise SettingsError(
            field, 'expected a period like "7y" or {"period": "7y", "basis": "...", "obligation": true}'
        )
    unknown = sorted(set(spec) - {"period", "basis", "obligation", "regulations"})
    if unknown:
        raise SettingsError(field, f"unknown key(s) {', '.join(unknown)}; use period, basis, obligation, regulations")
    if "period" not in spec:
        raise SettingsError(field, 'needs a "period", e.g. "7y"')
    months, days = parse_period(spec["period"], field)
    basis = str(spec.get("basis") or "")
    obligation = spec.get("obligation", bool(basis))
    if not isinstance(obligation, bool):
        raise SettingsError(field, f"obligation must be true or false, got {obligation!r}")
    if obligation and not basis:
        raise SettingsError(field, "a legal obligation needs its basis (the rule that requires keeping the record)")
    regulations = spec.get("regulations", [])
    if isinstance(regulations, str) or not all(isinstance(r, str) for r in regulations):
        raise SettingsError(field, 'regulations must be a list of regulation tags, e.g. ["MiFID-II"]')
    return RetentionRule(name, months, days, basis or "internal policy", obligation, tuple(regulations))


class RetentionPolicy:
    """The rules in force: the built-in ones with the settings' additions and replacements."""

    def __init__(self, rules: Iterable[RetentionRule]) -> None:
        self.rules: dict[str, RetentionRule] = {rule.name: rule for rule in rules}
        canonical = json.dumps({n: r.as_json() for n, r in sorted(self.rules.items())}, sort_keys=True)
        self.text = canonical
        self.policy_id = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        """Identifies this exact policy; stored on each decision (``decision.retention.policy``)."""
        self._implied = [(tuple(_norm(tag) for tag in r.regulations), r) for r in self.rules.values() if r.regulations]
        self._cache: dict[tuple[str | None, tuple[str, ...]], tuple[tuple[RetentionRule, ...], bool]] = {}

    @classmethod
    def from_settings(cls, overrides: Mapping[str, Any] | None) -> RetentionPolicy:
        rules = {rule.name: rule for rule in DEFAULT_RULES}
        for name, spec in (overrides or {}).items():
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", str(name)):
                raise SettingsError(SETTING, f"retention class {name!r} must be letters, digits, '-', '_', '.' or ':'")
            rules[str(name)] = _rule_from_json(str(name), spec)
        return cls(rules.values())

    def _applicable(
        self, retention_class: str | None, regulations: tuple[str, ...]
    ) -> tuple[tuple[RetentionRule, ...], bool]:
        key = (retention_class, regulations)
        found = self._cache.get(key)
        if found is not None:
            return found
        chosen: list[RetentionRule] = []
        known = True
        if retention_class:
            rule = self.rules.get(retention_class)
            if rule is None:
                known = False
            else:
                chosen.append(rule)
        for tag in map(_norm, regulations):
            for prefixes, rule in self._implied:
                if rule not in chosen and any(tag.startswith(p) for p in prefixes):
                    chosen.append(rule)
        if not chosen and known:
            chosen.append(self.rules.get(DEFAULT_CLASS) or DEFAULT_RULES[-1])
        result = (tuple(chosen), known)
        if len(self._cache) < 1024:
            self._cache[key] = result
        return result

    def term(
        self, decided_at: datetime | date, retention_class: str | None, regulations: Iterable[str] = ()
    ) -> RetentionTerm:
        """``retain_until``: the longest period that applies; basis: the longest legal obligation among them."""
        day = decided_at.date() if isinstance(decided_at, datetime) else decided_at
        rules, known = self._applicable(retention_class, tuple(regulations))
        if not known:
            return RetentionTerm(
                None, f"retention class {retention_class!r} is not in the policy: kept until it is", True, ()
            )
        until = max(rule.until(day) for rule in rules)
        obliged = [rule for rule in rules if rule.obligation]
        if obliged:
            basis_rule = max(obliged, key=lambda r: r.until(day))
            return RetentionTerm(until, basis_rule.basis, True, tuple(r.name for r in rules), basis_rule.until(day))
        return RetentionTerm(until, rules[0].basis, False, tuple(r.name for r in rules))

    def knows(self, retention_class: str | None) -> bool:
        return not retention_class or retention_class in self.rules
