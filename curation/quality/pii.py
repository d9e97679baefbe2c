"""Personal data in fine-tuning examples: find it, show it, and replace it with typed placeholders.

What is found, in English and Japanese text: e-mail addresses, phone numbers (international,
North American, Japanese domestic), credit card numbers (Luhn-checked), IPv4 and IPv6
addresses, IBANs (ISO 13616 mod-97 and the country's length), Japanese My Numbers (check
digit), Japanese postal codes, and personal names.

Detection runs through Microsoft Presidio (`pii_engine`): our patterns (`pii_patterns`, which
keep the Japanese formats and validate what they find) and the name cues (`pii_names`: a title,
"my name is", 私の名前は, an honorific) are Presidio recognizers, and in Japanese text GiNZA's
named-entity model adds the names written with no cue around them (`pii_ginza`). Redaction is
Presidio's anonymizer replacing each finding with its kind's placeholder. Everything runs
offline; see `pii_engine` for how.

Presidio and GiNZA are imported on the first detection, not when Django starts: importing
Presidio takes seconds, and GiNZA is loaded only for a text that holds Japanese. The findings
of the last few thousand texts are kept, so a page, a scan and a redaction that look at the
same text read it once.

Plain data in and out: strings and lists of messages in, findings and redacted copies out.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from curation.quality.pii_patterns import (
    IBAN_LENGTHS,
    PiiKind,
    iban_valid,
    luhn_valid,
    my_number_check_digit,
    my_number_valid,
    resolve,
)

__all__ = [
    # the checks of the patterns, part of what this module offers
    "IBAN_LENGTHS",
    "iban_valid",
    "luhn_valid",
    "my_number_check_digit",
    "my_number_valid",
    # detection and redaction
    "KIND_HOW",
    "KIND_LABELS",
    "PLACEHOLDERS",
    "Finding",
    "PiiKind",
    "detect",
    "detect_messages",
    "highlight",
    "redact",
    "redact_messages",
]

# How each kind is found, for the reason a list gives per finding.
KIND_HOW: dict[str, Promise] = {
    PiiKind.EMAIL: gettext_lazy("an address of the form name@domain"),
    PiiKind.PHONE: gettext_lazy("a phone number pattern (international, North American or Japanese)"),
    PiiKind.CREDIT_CARD: gettext_lazy("digits that pass the Luhn check, in groups or after a word such as card"),
    PiiKind.IP_ADDRESS: gettext_lazy("a valid IPv4 or IPv6 address"),
    PiiKind.IBAN: gettext_lazy("an IBAN that passes the mod-97 check"),
    PiiKind.MY_NUMBER: gettext_lazy(
        "twelve digits with a valid My Number check digit, after a word such as マイナンバー or 番号"
    ),
    PiiKind.POSTAL_CODE: gettext_lazy("a Japanese postal code after 〒 or an address word, or before a prefecture"),
    PiiKind.NAME: gettext_lazy(
        'a title, "my name is" or an honorific beside a name; in Japanese text also the GiNZA language model'
    ),
}

KIND_LABELS: dict[str, Promise] = {
    PiiKind.EMAIL: gettext_lazy("E-mail address"),
    PiiKind.PHONE: gettext_lazy("Phone number"),
    PiiKind.CREDIT_CARD: gettext_lazy("Credit card number"),
    PiiKind.IP_ADDRESS: gettext_lazy("IP address"),
    PiiKind.IBAN: gettext_lazy("IBAN"),
    PiiKind.MY_NUMBER: gettext_lazy("My Number"),
    PiiKind.POSTAL_CODE: gettext_lazy("Postal code"),
    PiiKind.NAME: gettext_lazy("Name"),
}

# Placeholders hold no digits, no "@" and no kanji or katakana, so nothing finds them again
# and redacting twice changes nothing.
PLACEHOLDERS: dict[str, str] = {kind: f"[{kind.upper()}]" for kind in PiiKind}

# Texts whose findings are kept (their candidates, before the kinds are chosen).
CACHED_TEXTS = 4096


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    text: str


def _kinds(kinds: Iterable[str] | None) -> list[PiiKind]:
    if kinds is None:
        return list(PiiKind)
    chosen = []
    for kind in kinds:
        try:
            chosen.append(PiiKind(kind))
        except ValueError:
            known = ", ".join(PiiKind)
            raise ValueError(f"Unknown kind of personal data {kind!r}; the kinds are {known}.") from None
    return chosen


def _resolve(candidates: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """One of each group of overlapping (kind, start, end): the longest, then by priority; sorted by start."""
    return resolve(candidates)


@functools.lru_cache(maxsize=CACHED_TEXTS)
def _candidates(text: str) -> tuple[tuple[PiiKind, int, int], ...]:
    from curation.quality import pii_engine

    return tuple((PiiKind(kind), start, end) for kind, start, end in pii_engine.analyze(text))


def detect(text: str, *, kinds: Iterable[str] | None = None) -> list[Finding]:
    """The personal data in ``text`` (all kinds, or only ``kinds``), sorted by start, none overlapping."""
    chosen = set(_kinds(kinds))
    if not text:
        return []
    candidates = [c for c in _candidates(text) if c[0] in chosen]
    return [
        Finding(kind=str(kind), start=start, end=end, text=text[start:end]) for kind, start, end in _resolve(candidates)
    ]


def redact(
    text: str, *, kinds: Iterable[str] | None = None, keep: Callable[[str, str], bool] | None = None
) -> tuple[str, int]:
    """``text`` with each finding replaced by its kind's placeholder, and how many were replaced.
    ``keep(kind, text)`` true leaves a finding as it is (a reviewer said it is not personal data)."""
    findings = [f for f in detect(text, kinds=kinds) if keep is None or not keep(f.kind, f.text)]
    if not findings:
        return text, 0
    from curation.quality import pii_engine

    spans = [(f.kind, f.start, f.end) for f in findings]
    return pii_engine.anonymize(text, spans, PLACEHOLDERS), len(findings)


def detect_messages(messages: list[dict[str, Any]], *, kinds: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Findings over each message's text content: message index, role, kind, offsets and text."""
    chosen = _kinds(kinds)
    hits = []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            continue
        for finding in detect(content, kinds=chosen):
            hits.append(
                {
                    "message": i,
                    "role": message.get("role"),
                    "kind": finding.kind,
                    "start": finding.start,
                    "end": finding.end,
                    "text": finding.text,
                }
            )
    return hits


def redact_messages(
    messages: list[dict[str, Any]],
    *,
    kinds: Iterable[str] | None = None,
    keep: Callable[[str, str], bool] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """A redacted copy of ``messages`` and the number of items replaced.

    The input is left as it was; each message in the copy is a new dict with its other keys
    kept (their values are shared with the input, not copied)."""
    chosen = _kinds(kinds)
    redacted = []
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            redacted.append(dict(message) if isinstance(message, dict) else message)
            continue
        text, count = redact(content, kinds=chosen, keep=keep)
        redacted.append({**message, "content": text})
        total += count
    return redacted, total


def highlight(text: str, findings: list[Finding]) -> list[tuple[str, str | None]]:
    """``text`` cut into (segment, kind) pairs, kind None between findings; the segments joined
    are ``text``. Escaping is left to the template, which wraps the found segments in <mark>."""
    segments: list[tuple[str, str | None]] = []
    position = 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start < position or finding.end > len(text):
            continue  # overlapping or stale findings cannot be shown without losing text
        if finding.start > position:
            segments.append((text[position : finding.start], None))
        if finding.end > finding.start:
            segments.append((text[finding.start : finding.end], finding.kind))
        position = finding.end
    if position < len(text):
        segments.append((text[position:], None))
    return segments
