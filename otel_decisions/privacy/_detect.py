"""Identifiers in free text: found where a format or a checksum makes the finding reliable.

One prefilter regex finds candidates; each is confirmed before it is masked:

- e-mail addresses; phone numbers (grouped national and ``+country`` forms);
- US SSNs (grouped ``3-2-4``, or 9 digits after "SSN" / "social security"); UK National Insurance
  numbers (format); NHS numbers (``stdnum.gb.nhs`` checksum, issued and test ranges);
  Canadian SINs and Australian TFNs (checksum, ``3-3-3`` grouping), Australian Medicare numbers;
  Indian Aadhaar (Verhoeff) and
  PAN; Dutch BSN, German tax id, French NIR, Spanish DNI, Italian codice fiscale (checksums);
- IBANs (ISO 13616 mod-97), payment cards (issuer prefix and length, then Luhn);
- IPv4 and IPv6 addresses, IPv4-mapped and scoped ones too (``ipaddress``; loopback and unspecified
  addresses are not personal),
  MAC addresses, IMEIs (15 digits, Luhn);
- a passport number after the word "passport".

The checksums are python-stdnum's (a maintained library of identifier validators).
``benchmarks/privacy_detectors.py`` compares this against Presidio's pattern recognizers,
``phonenumbers`` and the earlier regexes for recall, false positives (UUIDs, run and trace ids,
timestamps, amounts, versions, hashes) and cost.

Example::

    from otel_decisions.privacy._detect import scrub_identifiers

    scrub_identifiers("NI QQ 12 34 56 C from 203.0.113.7")  # 'NI [NINO] from [IP]'
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from stdnum import iban, imei, luhn
from stdnum.au import tfn
from stdnum.ca import sin
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.in_ import aadhaar, pan
from stdnum.it import codicefiscale
from stdnum.nl import bsn

LABELS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "ssn": "[SSN]",
    "nino": "[NINO]",
    "nhs": "[NHS]",
    "national_id": "[NATIONAL_ID]",
    "iban": "[IBAN]",
    "ip": "[IP]",
    "mac": "[MAC]",
    "imei": "[IMEI]",
    "passport": "[PASSPORT]",
}
"""What each kind of identifier is replaced with."""

_NO_DIGITS = str.maketrans("", "", "0123456789")
_DIGIT_OR_AT = re.compile(r"[0-9@]")


def likely(text: str) -> bool:
    """Cheap pre-check: an identifier takes 6+ characters and an '@', four digits, or three digits
    and a ':' (an IPv6 address such as ``fe80::1``); a version such as ``3.2.0`` has none of these.
    Text with no digit and no '@' is ruled out by one regex scan; the digits of the rest are counted
    with ``str.translate``."""
    if len(text) < 6 or _DIGIT_OR_AT.search(text) is None:  # most text: one C-speed scan
        return False
    if "@" in text:
        return True
    digits = len(text) - len(text.translate(_NO_DIGITS))
    return digits >= 4 or (digits == 3 and ":" in text)


_EMAIL = r"(?<![\w.%+-])[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,24}"
# Not inside a longer token: a UUID's "0591-4704-9885" is no phone number.
_PHONE = (  # not followed by more digit groups: the first groups of a card number are no phone
    r"(?:(?<![\w+])\+\d{1,3}[\s.-]?(?:\(\d{1,4}\)[\s.-]?)?\d{1,5}(?:[\s.-]\d{2,8}){1,4}(?![\w-]|[\s.]\d)"
    r"|(?<![\w+])\+\d{8,15}(?![\w-])"  # +917021887004
    r"|(?<![\w-])0\d(?:[\s.]\d\d){4}(?![\w-]|[\s.]\d)"  # 02 61 91 04 09
    r"|(?<![\w-])[6-9]\d{4}[\s-]\d{5}(?![\w-]|[\s.]\d)"  # 90061 43548 (an Indian mobile)
    r"|(?:\(\d{2,4}\)|(?<![\w-])\d{2,4})[\s.-]\d{3,4}[\s.-]\d{3,4}(?![\w-]|[\s.]\d))"
)
_PREFILTER = re.compile(
    rf"(?P<email>{_EMAIL})"
    # ids that are not personal and whose digit groups could pass a checksum: skipped whole
    r"|(?P<uuid>(?<![\w-])[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\w-]))"
    r"|(?P<mac>(?<![\w:.-])[0-9A-Fa-f]{2}(?P<msep>[:-])[0-9A-Fa-f]{2}(?:(?P=msep)[0-9A-Fa-f]{2}){4}(?![\w:-])"
    r"|(?<![\w.])[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}(?![\w.]))"
    r"|(?P<ipv4>(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d))"
    r"|(?P<ipv6>(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})(?:%[\w.]+)?(?![\w:]))"
    r"|(?P<iban>(?<![\w-])[A-Z]{2}\d\d(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w-]))"
    r"|(?P<nino>(?<![\w-])(?:[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]|QQ) ?\d\d ?\d\d ?\d\d ?[A-D](?![\w-]))"
    r"|(?i:passport)(?: (?i:no\.?|number|#))?[ :#]{0,3}(?P<passport>(?=[A-Z0-9]*\d)[A-Z0-9]{6,9})\b"
    r"|(?i:ssn|social security(?: number)?|itin)\W{0,3}(?P<ssn_bare>(?<!\d)\d{9}(?!\d))"
    r"|(?P<hexid>(?<![\w-])(?=[0-9]*[A-Fa-f])[0-9A-Fa-f]{16,}(?![\w-]))"  # trace ids, hashes (after IBANs)
    r"|(?P<ssn>(?<![\w-])\d{3}(?P<ssep>[- ])\d{2}(?P=ssep)\d{4}(?![\w-]))"
    rf"|(?P<phone>{_PHONE})"
    # digit-bearing tokens joined by single spaces or dashes; "card:4111...", "/cards/4111.../x",
    # "kyc-4111..." and "4111...-declined" included (a dotted number such as a version is not a run)
    r"|(?P<run>(?<![\w@.+])[A-Za-z]*\d[A-Za-z0-9]*(?:[ -][A-Za-z]*\d[A-Za-z0-9]*)*(?![\w@]|\.\d))"
)
_NINO_UNUSED_PREFIX = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
_TOKEN = re.compile(r"[^ -]+")
_G333 = re.compile(r"\d{3}([ -]?)\d{3}\1\d{3}")
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_PAN_SHAPE = re.compile(r"[A-Z]{5}\d{4}[A-Z]")
_CF_SHAPE = re.compile(r"[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]")
_DNI_SHAPE = re.compile(r"\d{8}[A-Z]")
_CARD_SHAPE = re.compile(r"\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5}")


def _card(number: str) -> bool:
    """Issuer prefix (IIN) and length, then Luhn: a timestamp that happens to pass Luhn is no card."""
    n, p2, p3, p4 = len(number), int(number[:2]), int(number[:3]), int(number[:4])
    issuer = (
        (number[0] == "4" and n in (13, 16, 19))
        or ((51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16)
        or (p2 in (34, 37) and n == 15)
        or ((p2 in (36, 38, 39) or 300 <= p3 <= 305) and n == 14)
        or ((number.startswith("6011") or p2 == 65 or 644 <= p3 <= 649) and 16 <= n <= 19)
        or (3528 <= p4 <= 3589 and 16 <= n <= 19)
    )
    return issuer and luhn.is_valid(number)


def _nhs(number: str) -> bool:
    """Issued ranges (3xx Northern Ireland, 4xx and 6xx-7xx England and Wales) and the 999 test range."""
    return (number[0] in "34567" or number.startswith("999")) and nhs.is_valid(number)


def _medicare(number: str) -> bool:
    """An Australian Medicare card number: first digit 2-6, weighted check digit (stdnum has none)."""
    if len(number) not in (10, 11) or number[0] not in "23456":
        return False
    weights = (1, 3, 7, 9, 1, 3, 7, 9)
    return sum(int(d) * w for d, w in zip(number[:8], weights, strict=True)) % 10 == int(number[8])


_Check = tuple[str, Callable[[str], bool], re.Pattern[str]]
_NUMERIC: dict[int, list[_Check]] = {
    9: [
        ("national_id", sin.is_valid, _G333),
        ("national_id", tfn.is_valid, _G333),
        ("national_id", bsn.is_valid, _G333),
    ],
    10: [
        ("nhs", _nhs, re.compile(r"\d{3}([ -]?)\d{3}\1\d{4}")),
        ("national_id", _medicare, re.compile(r"\d{4} ?\d{5} ?\d")),
    ],
    11: [
        ("national_id", idnr.is_valid, re.compile(r"\d{2}( ?)\d{3}\1\d{3}\1\d{3}")),
        ("national_id", _medicare, re.compile(r"\d{4} ?\d{5} ?\d{2}|\d{4} \d{5} \d \d")),
    ],
    12: [("national_id", aadhaar.is_valid, re.compile(r"\d{4}([ -]?)\d{4}\1\d{4}"))],
    15: [
        ("imei", imei.is_valid, re.compile(r"\d{15}|\d{2}([ -])\d{6}\1\d{6}\1\d")),
        ("national_id", nir.is_valid, re.compile(r"\d{15}|\d \d{2} \d{2} \d{2} \d{3} \d{3} \d{2}")),
    ],
}
for _length in range(13, 20):
    _NUMERIC.setdefault(_length, []).append(("card", _card, _CARD_SHAPE))
_ALNUM = [
    (_IBAN_SHAPE, "iban", iban.is_valid),
    (_PAN_SHAPE, "national_id", pan.is_valid),
    (_CF_SHAPE, "national_id", codicefiscale.is_valid),
    (_DNI_SHAPE, "national_id", dni.is_valid),
]

Found = tuple[int, int, str]


def _classify(original: str, compact: str) -> str | None:
    if compact.isdigit():
        for label, check, shape in _NUMERIC.get(len(compact), ()):
            if shape.fullmatch(original) and check(compact):
                return label
        return None
    for shape, label, check in _ALNUM:
        if shape.fullmatch(compact) and check(compact):
            return label
    return None


def _runs(text: str, base: int, out: list[Found]) -> None:
    """Windows of whole tokens, longest first, each tried against the validators of its length."""
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
    i = 0
    while i < len(tokens):
        for j in range(min(len(tokens), i + 8), i, -1):
            start, end = tokens[i][0], tokens[j - 1][1]
            original = text[start:end]
            compact = original.replace(" ", "").replace("-", "")
            if 9 <= len(compact) <= 34:
                label = _classify(original, compact)
                if label:
                    out.append((base + start, base + end, label))
                    i = j
                    break
        else:
            i += 1


def find_identifiers(text: str) -> list[Found]:
    """``(start, end, kind)`` of every identifier found in *text*, in order, not overlapping."""
    out: list[Found] = []
    for match in _PREFILTER.finditer(text):
        kind = match.lastgroup
        if kind == "run":
            run = match.group("run")
            if len(run) >= 9:
                _runs(run, match.start(), out)
        elif kind == "iban":
            if iban.is_valid(match.group(0)):
                out.append((match.start(), match.end(), "iban"))
            else:  # not an IBAN; its digit groups may still hold something
                _runs(match.group(0), match.start(), out)
        elif kind == "ipv4" or kind == "ipv6":
            try:
                address = ipaddress.ip_address(match.group(kind))
            except ValueError:
                continue
            if not (address.is_loopback or address.is_unspecified):
                out.append((match.start(), match.end(), "ip"))
        elif kind == "nino":
            if match.group(0)[:2] not in _NINO_UNUSED_PREFIX:
                out.append((match.start(), match.end(), "nino"))
        elif kind == "passport":
            out.append((match.start("passport"), match.end("passport"), "passport"))
        elif kind == "ssn_bare":
            out.append((match.start("ssn_bare"), match.end("ssn_bare"), "ssn"))
        elif kind == "phone":  # a grouped number may be a checksummed identifier rather than a phone
            before = len(out)
            if not match.group(0).startswith(("+", "(")):
                _runs(match.group(0), match.start(), out)
            if len(out) == before:
                out.append((match.start(), match.end(), "phone"))
        elif kind in ("email", "mac", "ssn"):
            out.append((match.start(), match.end(), kind))
    return out


def scrub_identifiers(text: str) -> str:
    """*text* with every identifier :func:`find_identifiers` finds replaced by its label."""
    if not likely(text):
        return text
    found = find_identifiers(text)
    if not found:
        return text
    parts: list[str] = []
    last = 0
    for start, end, kind in found:
        parts.append(text[last:start])
        parts.append(LABELS[kind])
        last = end
    parts.append(text[last:])
    return "".join(parts)
