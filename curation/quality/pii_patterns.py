"""The patterns that find personal data: e-mail addresses, phone numbers (international, North
American, Japanese domestic), credit card numbers (Luhn-checked), IPv4 and IPv6 addresses, IBANs
(ISO 13616 mod-97 and the country's length), Japanese My Numbers (check digit) and Japanese
postal codes. Names are found by `pii_names`.

Each finder takes the width-folded text (`normalise`) and yields (start, end) spans. The
Presidio recognizers of `pii_engine` run them and add what the context must say; the previous
detector (`pii_previous`) ran them bare.

Every pattern here is fixed (nothing a user types is compiled) and is written so that it
cannot backtrack catastrophically: every quantifier is bounded and no two adjacent parts can
match the same characters in more than one way.

Numbers are checked where a check exists (Luhn, mod-97, the My Number check digit, octet
ranges, ``ipaddress``), which keeps order numbers, dates, versions and prices out.

Full-width characters (０９０－１２３４－５６７８, ＠) are mapped to ASCII before matching with a
translation that keeps every character in place, so offsets point into the original text.

Plain Python.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum

from curation.quality.pii_names import find_names


class PiiKind(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    CREDIT_CARD = "credit_card"
    IP_ADDRESS = "ip_address"
    IBAN = "iban"
    MY_NUMBER = "my_number"
    POSTAL_CODE = "postal_code"
    NAME = "name"


# --- normalisation -----------------------------------------------------------------------

# One character for one character, so that an offset in the normalised text is the same
# offset in the original.
_WIDTH_TABLE: dict[int, int] = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_WIDTH_TABLE[0x3000] = ord(" ")  # ideographic space
for _dash in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63":
    _WIDTH_TABLE[ord(_dash)] = ord("-")
# The katakana prolonged sound mark is a dash only between digits (０９０ー１２３４); after
# katakana it is part of the word (ユーザー) and must stay.
_PROLONGED_AFTER_DIGIT = re.compile("(?<=[0-9])[\u30fc\uff70]")


def normalise(text: str) -> str:
    return _PROLONGED_AFTER_DIGIT.sub("-", text.translate(_WIDTH_TABLE))


# --- shared pieces -----------------------------------------------------------------------

# A number must stand on its own: not inside a longer number, a product code (letters), an
# order number (#12345, No.12345), a price ($, ¥) or a decimal or dotted version (3.14, 1.2.3).
# A dot after a word is allowed (TEL.03-1234-5678). Japanese characters are not excluded,
# because Japanese puts no spaces around numbers.
_NUM_LEFT = r"(?<![0-9A-Za-z_#$¥€£+\-/])(?<![0-9]\.)(?<![Nn]o\.)"
_NUM_RIGHT = r"(?![0-9A-Za-z_])(?![.\-/][0-9])"

Span = tuple[int, int]


# --- e-mail --------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])"
    r"(?P<local>[A-Za-z0-9._%+\-]{1,64})@"
    r"(?P<domain>(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24})"
    r"(?![A-Za-z0-9\-])"
)


def _find_emails(text: str) -> Iterator[Span]:
    if "@" not in text:
        return
    for match in _EMAIL.finditer(text):
        local, domain = match["local"], match["domain"]
        if local.startswith(".") or local.endswith(".") or ".." in local:
            continue
        if any(label.startswith("-") or label.endswith("-") for label in domain.split(".")):
            continue
        yield match.span()


# --- phone numbers ---------------------------------------------------------------------------

# +81 90-1234-5678, +1 (555) 123-4567, +44 (0)20 7946 0958: one separator between groups, so a
# run of digits splits into groups in only one way.
_PHONE_INTERNATIONAL = re.compile(
    r"(?<![0-9A-Za-z_+])\+[1-9][0-9]{0,2}"
    r"(?:[ \-]?\([0-9]{1,4}\)[ \-]?[0-9]{1,12}|[ \-][0-9]{1,12}){1,6}" + _NUM_RIGHT
)
_PHONE_INTERNATIONAL_COMPACT = re.compile(r"(?<![0-9A-Za-z_+])\+[1-9][0-9]{7,14}" + _NUM_RIGHT)
# (555) 123-4567, 555-123-4567, 555.123.4567, 1-800-555-1234. Digits separated by spaces
# alone (555 123 4567) are left out: they read as three ordinary numbers too often.
_PHONE_NORTH_AMERICA = re.compile(
    _NUM_LEFT + r"(?:1[\-. ])?"
    r"(?:\([2-9][0-9]{2}\) ?[0-9]{3}[\- ][0-9]{4}|[2-9][0-9]{2}(?P<sep>[\-.])[0-9]{3}(?P=sep)[0-9]{4})" + _NUM_RIGHT
)
# 03-1234-5678, 0120 123 456, 03(1234)5678; which groupings are real numbers is checked below.
_PHONE_JAPAN_GROUPED = re.compile(
    _NUM_LEFT + r"(?P<a>0[0-9]{1,4})(?:(?P<sep>[\- ])(?P<b>[0-9]{1,4})(?P=sep)|\((?P<pb>[0-9]{1,4})\))"
    r"(?P<c>[0-9]{3,4})" + _NUM_RIGHT
)
_PHONE_JAPAN_COMPACT = re.compile(_NUM_LEFT + r"0[0-9]{9,10}" + _NUM_RIGHT)

# Japanese prefixes of 11-digit numbers (mobile, IP phone, pager) and of non-geographic ones,
# which a 10-digit landline can never start with.
_JP_ELEVEN_DIGIT = ("050", "060", "070", "080", "090", "020")
_JP_NON_GEOGRAPHIC = (*_JP_ELEVEN_DIGIT, "0120", "0570", "0800", "0990")


def _japanese_grouping_valid(area: str, exchange: str, line: str) -> bool:
    if area in ("050", "070", "080", "090"):
        return len(exchange) == 4 and len(line) == 4
    if area in ("0120", "0570"):
        return len(exchange) == 3 and len(line) == 3
    if area == "0800":
        return len(exchange) == 3 and len(line) == 4
    # Landlines: 10 digits, the area code (with its 0) two to five of them, the last group four.
    return (
        area[1] != "0" and not area.startswith(_JP_NON_GEOGRAPHIC) and len(area) + len(exchange) == 6 and len(line) == 4
    )


def _japanese_compact_valid(digits: str) -> bool:
    if len(digits) == 11:
        return digits.startswith(("050", "070", "080", "090", "0800"))
    return digits[1] != "0" and not digits.startswith(_JP_ELEVEN_DIGIT)


def _find_phones(text: str) -> Iterator[Span]:
    if "+" in text:
        for match in _PHONE_INTERNATIONAL.finditer(text):
            candidate = match.group()
            # "(0)" is the trunk prefix dialled only at home; E.164 allows 15 digits at most.
            digits = sum(ch.isdigit() for ch in candidate.replace("(0)", ""))
            last_group = re.split(r"[^0-9]", candidate)[-1]
            if 8 <= digits <= 15 and len(last_group) >= 3:
                yield match.span()
        for match in _PHONE_INTERNATIONAL_COMPACT.finditer(text):
            yield match.span()
    for match in _PHONE_NORTH_AMERICA.finditer(text):
        yield match.span()
    for match in _PHONE_JAPAN_GROUPED.finditer(text):
        if _japanese_grouping_valid(match["a"], match["b"] or match["pb"], match["c"]):
            yield match.span()
    for match in _PHONE_JAPAN_COMPACT.finditer(text):
        if _japanese_compact_valid(match.group()):
            yield match.span()


# --- credit cards ------------------------------------------------------------------------------

_CARD_CANDIDATE = re.compile(_NUM_LEFT + r"[0-9]{3,19}(?:[ \-][0-9]{3,19}){0,7}" + _NUM_RIGHT)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, ch in enumerate(reversed(digits)):
        value = int(ch)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_valid(groups: list[str], separators: list[str]) -> bool:
    digits = "".join(groups)
    if not 13 <= len(digits) <= 19:
        return False
    # Every major network's numbers start with 2 to 6 (Mastercard 2/5, Amex and JCB 3, Visa 4,
    # Discover and UnionPay 6); cards print their first group as four digits.
    if digits[0] not in "23456" or (len(groups) > 1 and len(groups[0]) != 4):
        return False
    if len(set(separators)) > 1:
        return False
    return luhn_valid(digits)


def _find_cards(text: str) -> Iterator[Span]:
    for match in _CARD_CANDIDATE.finditer(text):
        # A card number can sit next to another number ("4111 1111 1111 1111 2024"), so the
        # longest run of whole groups that is a valid card is taken, not only the whole match.
        pieces = re.split(r"([ \-])", match.group())
        groups, separators = pieces[0::2], pieces[1::2]
        starts = [match.start()]
        for group, separator in zip(groups, separators, strict=False):
            starts.append(starts[-1] + len(group) + len(separator))
        i = 0
        while i < len(groups):
            for j in range(len(groups), i, -1):
                if _card_valid(groups[i:j], separators[i : j - 1]):
                    yield starts[i], starts[j - 1] + len(groups[j - 1])
                    i = j
                    break
            else:
                i += 1


# --- IP addresses -------------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![0-9A-Za-z_.])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9A-Za-z_])(?!\.[0-9])")
# Hex digits and colons, optionally ending in an embedded IPv4 (::ffff:192.0.2.1); whether it
# is an address is left to the ipaddress module.
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z_.])[0-9A-Fa-f:]{2,39}(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?"
    r"(?![0-9A-Za-z_:])(?!\.[0-9A-Za-z])"
)


def _find_ips(text: str) -> Iterator[Span]:
    for match in _IPV4.finditer(text):
        # Leading zeros (010.1.1.1) are refused: they read as octal to some tools and are more
        # often parts of something else.
        if all(int(octet) <= 255 and (octet == "0" or not octet.startswith("0")) for octet in match.group().split(".")):
            yield match.span()
    if "::" not in text and text.count(":") < 7:
        return
    for match in _IPV6.finditer(text):
        candidate = match.group()
        # Times (12:30, 10:30:15) have fewer colons or are not valid addresses. Scope operators
        # in code (a::b) are valid addresses in form only: real ones carry more hex digits and
        # at least one decimal digit (2001:db8::1, fe80::1).
        hex_digits = sum(ch not in ":." for ch in candidate)
        if candidate.count(":") < 2 or hex_digits < 4 or not any(ch.isdigit() for ch in candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield match.span()


# --- IBAN ----------------------------------------------------------------------------------------

# ISO 13616 registry lengths, country code and check digits included.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

_IBAN_CANDIDATE = re.compile(r"(?<![A-Za-z0-9])(?P<country>[A-Z]{2})[0-9]{2}(?: ?[A-Z0-9]){11,30}")


def iban_valid(compact: str) -> bool:
    """The ISO 13616 check: the country's length, and the number mod 97 is 1."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isascii() or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged.upper())) % 97 == 1


def _find_ibans(text: str) -> Iterator[Span]:
    for match in _IBAN_CANDIDATE.finditer(text):
        # Only countries whose length is known: that length says where the IBAN ends, however
        # much text in capitals follows it ("... 3000 IN LONDON").
        length = IBAN_LENGTHS.get(match["country"])
        if length is None:
            continue
        end, seen = match.start(), 0
        while end < match.end() and seen < length:
            seen += text[end] != " "
            end += 1
        if seen < length or (end < len(text) and text[end].isascii() and text[end].isalnum()):
            continue
        candidate = text[match.start() : end]
        groups = candidate.split(" ")
        if len(groups) > 1 and any(len(group) != 4 for group in groups[:-1]):
            continue
        if iban_valid(candidate.replace(" ", "")):
            yield match.start(), end


# --- My Number -----------------------------------------------------------------------------------

# Not the first or last twelve digits of a longer space-separated number ("4111 1111 1111 1112"
# is a card number, not a My Number followed by 1112).
_MY_NUMBER = re.compile(
    _NUM_LEFT + r"(?<![0-9] )[0-9]{4}(?P<sep>[ \-]?)[0-9]{4}(?P=sep)[0-9]{4}(?! [0-9])" + _NUM_RIGHT
)


def my_number_check_digit(first_eleven: str) -> int:
    """The check digit of a Japanese Individual Number, by the official algorithm.

    P_n is the n-th of the eleven digits counted from the right; its weight Q_n is n + 1 for
    n of 1 to 6 and n - 5 for n of 7 to 11."""
    total = 0
    for n, ch in enumerate(reversed(first_eleven), start=1):
        total += int(ch) * (n + 1 if n <= 6 else n - 5)
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def my_number_valid(digits: str) -> bool:
    return len(digits) == 12 and digits.isdigit() and my_number_check_digit(digits[:11]) == int(digits[11])


def _find_my_numbers(text: str) -> Iterator[Span]:
    for match in _MY_NUMBER.finditer(text):
        # A twelve-digit number with a wrong check digit is not flagged: that keeps order,
        # invoice and tracking numbers out, ten in eleven of which fail the check.
        if my_number_valid(re.sub(r"[ \-]", "", match.group())):
            yield match.span()


# --- postal codes ---------------------------------------------------------------------------------

# The mark or the word stays outside the finding: only the code itself is personal.
_POSTAL_MARKED = re.compile(r"(?:〒|郵便番号(?:は)?)[ :]{0,3}(?P<code>[0-9]{3}-?[0-9]{4})" + _NUM_RIGHT)
# A bare 123-4567 only where it is not part of a longer run of digits and hyphens, so phone
# numbers such as 03-1234-5678 are not cut into postal codes.
_POSTAL_BARE = re.compile(_NUM_LEFT + r"[0-9]{3}-[0-9]{4}" + _NUM_RIGHT)


def _find_postal_codes(text: str) -> Iterator[Span]:
    for match in _POSTAL_MARKED.finditer(text):
        yield match.span("code")
    for match in _POSTAL_BARE.finditer(text):
        yield match.span()


# --- all of them -----------------------------------------------------------------------------------

FINDERS: dict[str, Callable[[str], Iterator[Span]]] = {
    PiiKind.EMAIL: _find_emails,
    PiiKind.PHONE: _find_phones,
    PiiKind.CREDIT_CARD: _find_cards,
    PiiKind.IP_ADDRESS: _find_ips,
    PiiKind.IBAN: _find_ibans,
    PiiKind.MY_NUMBER: _find_my_numbers,
    PiiKind.POSTAL_CODE: _find_postal_codes,
    PiiKind.NAME: find_names,
}

# Where two findings overlap the longer wins; between equally long ones, the first here. The
# more specific, better validated kinds come first.
PRIORITY: dict[str, int] = {
    kind: rank
    for rank, kind in enumerate(
        [
            PiiKind.EMAIL,
            PiiKind.IBAN,
            PiiKind.CREDIT_CARD,
            PiiKind.MY_NUMBER,
            PiiKind.PHONE,
            PiiKind.IP_ADDRESS,
            PiiKind.POSTAL_CODE,
            PiiKind.NAME,
        ]
    )
}


def resolve(candidates: Iterable[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """One of each group of overlapping (kind, start, end): the longest, then by priority; sorted by start."""
    starts: list[int] = []
    ends: dict[int, int] = {}
    kept = []
    for kind, start, end in sorted(set(candidates), key=lambda c: (c[1] - c[2], PRIORITY[c[0]], c[1])):
        # Kept spans never overlap, so the one starting last before this one ends is the only
        # one that can reach into it.
        i = bisect_left(starts, end) - 1
        if i >= 0 and ends[starts[i]] > start:
            continue
        insort(starts, start)
        ends[start] = end
        kept.append((kind, start, end))
    return sorted(kept, key=lambda c: c[1])
