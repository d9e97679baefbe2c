"""Sets of code points as sorted ranges, and the classes of Python's ``re`` built from them.

RE2's ``\\d``, ``\\w``, ``\\s`` and ``\\b`` know only ASCII, and its case folding is Unicode's,
not Python's. To give a pattern the meaning Python's ``re`` gives it, every character class is
written out as the exact set of code points ``re`` accepts on this Python: ``\\d`` is
``str.isdecimal``, ``\\w`` is ``str.isalnum`` or ``_``, ``\\s`` is ``str.isspace`` (what ``_sre``
tests), each built once by scanning every code point. Case-insensitive sets are not derived
from a model of ``re``'s folding but asked of ``re`` itself, for every character that takes
part in any case relation; every other character folds to itself.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from functools import cache

Ranges = tuple[tuple[int, int], ...]
MAX_CODE = 0x10FFFF
ALL: Ranges = ((0, MAX_CODE),)
SURROGATES: Ranges = ((0xD800, 0xDFFF),)


def from_codes(codes: Iterable[int]) -> Ranges:
    out: list[list[int]] = []
    for code in sorted(set(codes)):
        if out and code == out[-1][1] + 1:
            out[-1][1] = code
        else:
            out.append([code, code])
    return tuple((low, high) for low, high in out)


def union(*sets: Ranges) -> Ranges:
    merged: list[list[int]] = []
    for low, high in sorted(r for s in sets for r in s):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return tuple((low, high) for low, high in merged)


def complement(ranges: Ranges) -> Ranges:
    out, start = [], 0
    for low, high in ranges:
        if low > start:
            out.append((start, low - 1))
        start = high + 1
    if start <= MAX_CODE:
        out.append((start, MAX_CODE))
    return tuple(out)


def difference(a: Ranges, b: Ranges) -> Ranges:
    return complement(union(complement(a), b))


def contains(ranges: Ranges, code: int) -> bool:
    index = bisect.bisect_right(ranges, (code, MAX_CODE + 1)) - 1
    return index >= 0 and ranges[index][0] <= code <= ranges[index][1]


def _scan(predicate: Callable[[str], bool]) -> Ranges:
    out: list[tuple[int, int]] = []
    start = None
    for code in range(MAX_CODE + 2):
        inside = code <= MAX_CODE and predicate(chr(code))
        if inside and start is None:
            start = code
        elif not inside and start is not None:
            out.append((start, code - 1))
            start = None
    return tuple(out)


ASCII_DIGIT = ((0x30, 0x39),)
ASCII_WORD = from_codes([*range(0x30, 0x3A), *range(0x41, 0x5B), 0x5F, *range(0x61, 0x7B)])
ASCII_SPACE = from_codes(map(ord, " \t\n\r\f\v"))


@cache
def digit() -> Ranges:
    return _scan(str.isdecimal)


@cache
def word() -> Ranges:
    return _scan(lambda c: c.isalnum() or c == "_")


@cache
def space() -> Ranges:
    return _scan(str.isspace)


@cache
def case_related() -> tuple[int, ...]:
    """Every character that has a case mapping or is the target of one (a superset of those
    whose case-insensitive matching differs from plain matching in ``re``)."""
    from re import _casefix  # the extra case equivalences re's own compiler uses

    codes: set[int] = set()
    for code in range(MAX_CODE + 1):
        char = chr(code)
        variants = char.lower() + char.upper() + char.casefold()
        if variants != char * 3:
            codes.add(code)
            codes.update(map(ord, variants))
    for low, others in _casefix._EXTRA_CASES.items():
        codes.add(low)
        codes.update(others)
    return tuple(sorted(codes))


@cache
def _case_related_ranges() -> Ranges:
    return from_codes(case_related())


def py_escape(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def re2_escape(code: int) -> str:
    return f"\\x{{{code:x}}}"


def _class_body(ranges: Ranges, escape: Callable[[int], str]) -> str:
    return "".join(escape(low) if low == high else f"{escape(low)}-{escape(high)}" for low, high in ranges)


@cache
def ignorecase(plain: Ranges, python_class: str, ascii_only: bool) -> Ranges:
    """The set ``python_class`` matches under re.IGNORECASE: the plain set for characters
    without case, and ``re``'s own answer for every character with one."""
    flags = re.IGNORECASE | (re.ASCII if ascii_only else 0)
    compiled = re.compile(python_class, flags)
    inside = [code for code in case_related() if compiled.fullmatch(chr(code))]
    return union(difference(plain, _case_related_ranges()), from_codes(inside))


def python_class(ranges: Ranges) -> str:
    """A class Python's ``re`` (and ``regex``) reads as exactly this set."""
    if not ranges:
        return "(?!)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return py_escape(ranges[0][0])
    inverse = complement(ranges)
    if len(inverse) < len(ranges):
        return f"[^{_class_body(inverse, py_escape)}]" if inverse else r"[\s\S]"
    return f"[{_class_body(ranges, py_escape)}]"


def re2_class(ranges: Ranges) -> str:
    """A class RE2 reads as exactly this set (surrogates never occur in UTF-8 text)."""
    ranges = difference(ranges, SURROGATES)
    if not ranges:
        return r"[^\x00-\x{10ffff}]"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return re2_escape(ranges[0][0])
    inverse = difference(complement(ranges), SURROGATES)
    if len(inverse) < len(ranges):
        return f"[^{_class_body(inverse, re2_escape)}]" if inverse else r"[\x00-\x{10ffff}]"
    return f"[{_class_body(ranges, re2_escape)}]"
