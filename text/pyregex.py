"""Python's ``re`` meaning, run on RE2: a pattern is parsed by ``re``'s own parser and written
out twice.

- For RE2 (linear time, many patterns in one ``Set``): every character class becomes the exact
  set of code points ``re`` accepts (text/charsets.py), case-insensitivity included, and the
  anchors become RE2's equivalents. ``\\b`` and ``\\B`` cannot be written in RE2 (no
  look-around), nor ``$`` followed by more pattern: there the RE2 pattern is a superset
  (the assertion dropped or widened) and ``confirm`` is set.
- For the ``regex`` package (``python``): the same explicit classes, with ``\\b``, ``\\B`` and
  the anchors written as look-arounds over them, so it means exactly what ``re`` means. It is
  run only on the rows RE2 found, with a timeout.

Width folding (NFKC) is a property of the text and of the pattern's literals: the text is
normalised once, and each literal character of the pattern (inside brackets, each member)
is replaced by its NFKC form, so ``ＲＥＦＵＮＤ`` and ``REFUND`` are one pattern.

Plain Python: no Django.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from functools import lru_cache
from re import _constants as C  # re's own parser: the pattern means what re says it means
from re import _parser
from typing import Any

from text import charsets as CS
from text.cjk import CJK_RANGES

IGNORECASE, MULTILINE, DOTALL, ASCII = C.SRE_FLAG_IGNORECASE, C.SRE_FLAG_MULTILINE, C.SRE_FLAG_DOTALL, C.SRE_FLAG_ASCII
MAX_FOLDED_RANGE = 0x30000


class PatternError(ValueError):
    """A pattern that cannot be given re's meaning on RE2. ``reason`` is one of: syntax,
    lookaround, backreference, possessive, unsupported; ``detail`` is re's own message."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Translation:
    re2: str  # matches where re matches (exactly, or a superset when confirm is set)
    python: str | None  # for the regex package: exactly re's meaning; None for RE2-only syntax
    confirm: bool = False  # RE2 only finds candidates; ``python`` decides


def fold(text: str) -> str:
    """Width folding: NFKC (full-width Latin and digits, half-width katakana, ligatures)."""
    return unicodedata.normalize("NFKC", text)


def fold_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """The folded text, and for each folded character the start and end of the original
    characters it came from (so spans found in the folded text point into the original)."""
    pieces: list[tuple[int, int]] = []  # (start, end) of segments that fold independently
    for index, char in enumerate(text):
        if pieces and (
            unicodedata.combining(char)
            or fold(text[pieces[-1][0] : index + 1]) != fold(text[pieces[-1][0] : index]) + fold(char)
        ):
            pieces[-1] = (pieces[-1][0], index + 1)
        else:
            pieces.append((index, index + 1))
    folded, starts, ends = [], [], []
    for start, end in pieces:
        part = fold(text[start:end])
        folded.append(part)
        starts.extend([start] * len(part))
        ends.extend([end] * len(part))
    return "".join(folded), starts, ends


def map_span(span: tuple[int, int], starts: list[int], ends: list[int], length: int) -> tuple[int, int]:
    start, end = span
    begin = starts[start] if start < len(starts) else length
    finish = ends[end - 1] if end > start else begin
    return begin, max(begin, finish)


# --- character sets ----------------------------------------------------------------------


def _category(code: Any, ascii_only: bool) -> tuple[CS.Ranges, str]:
    """The set of a \\d \\w \\s (or negation) and how re writes it."""
    name = str(code)
    if "DIGIT" in name:
        ranges, text = (CS.ASCII_DIGIT if ascii_only else CS.digit()), "d"
    elif "WORD" in name:
        ranges, text = (CS.ASCII_WORD if ascii_only else CS.word()), "w"
    elif "SPACE" in name:
        ranges, text = (CS.ASCII_SPACE if ascii_only else CS.space()), "s"
    else:
        raise PatternError("unsupported", name)
    if "NOT" in name:
        return CS.complement(ranges), "\\" + text.upper()
    return ranges, "\\" + text


def _folded(ranges: CS.Ranges) -> CS.Ranges:
    """The members and what each folds to when that is one character."""
    images = []
    for low, high in ranges:
        if high - low > MAX_FOLDED_RANGE:
            continue
        for code in range(low, high + 1):
            image = fold(chr(code))
            if len(image) == 1 and image != chr(code):
                images.append(ord(image))
    return CS.union(ranges, CS.from_codes(images))


def _in_set(items: list[tuple[Any, Any]], flags: int, folding: bool) -> CS.Ranges:
    members: list[tuple[int, int]] = []
    categories: list[CS.Ranges] = []
    escapes: list[str] = []
    negate = False
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            members.append((av, av))
        elif op is C.RANGE:
            members.append(tuple(av))  # type: ignore[arg-type]
        elif op is C.CATEGORY:
            ranges, text = _category(av, bool(flags & ASCII))
            categories.append(ranges)
            escapes.append(text)
        else:
            raise PatternError("unsupported", str(op))
    member_set = CS.union(tuple(members))
    if folding:
        member_set = _folded(member_set)
    result = CS.union(member_set, *categories)
    if flags & IGNORECASE:
        body = "".join(
            CS.py_escape(lo) if lo == hi else f"{CS.py_escape(lo)}-{CS.py_escape(hi)}" for lo, hi in member_set
        )
        result = CS.ignorecase(result, f"[{body}{''.join(escapes)}]", bool(flags & ASCII))
    return CS.complement(result) if negate else result


def _literal_set(code: int, flags: int) -> CS.Ranges:
    plain = ((code, code),)
    return CS.ignorecase(plain, CS.py_escape(code), bool(flags & ASCII)) if flags & IGNORECASE else plain


def _word(flags: int) -> CS.Ranges:
    return CS.ASCII_WORD if flags & ASCII else CS.word()


# --- the translation -----------------------------------------------------------------------

_REFUSED = {
    C.GROUPREF: "backreference",
    C.GROUPREF_EXISTS: "backreference",
    C.ASSERT: "lookaround",
    C.ASSERT_NOT: "lookaround",
    C.ATOMIC_GROUP: "possessive",
    C.POSSESSIVE_REPEAT: "possessive",
}


class _Writer:
    def __init__(self, folding: bool) -> None:
        self.folding = folding
        self.confirm = False

    def sequence(self, items: Any, flags: int, tail: bool) -> tuple[str, str]:
        r2, py = [], []
        run: list[str] = []  # consecutive literals fold together ("e" + U+0301 is "é")
        for position, (op, av) in enumerate(items):
            if op is C.LITERAL and self.folding:
                run.append(chr(av))
                continue
            for char in fold("".join(run)):
                a, b = self.chars(_literal_set(ord(char), flags))
                r2.append(a)
                py.append(b)
            run = []
            a, b = self.item(op, av, flags, tail and position == len(items) - 1)
            r2.append(a)
            py.append(b)
        for char in fold("".join(run)):
            a, b = self.chars(_literal_set(ord(char), flags))
            r2.append(a)
            py.append(b)
        return "".join(r2), "".join(py)

    def chars(self, ranges: CS.Ranges) -> tuple[str, str]:
        return CS.re2_class(ranges), CS.python_class(ranges)

    def literal(self, code: int, flags: int) -> tuple[str, str]:
        image = fold(chr(code)) if self.folding else chr(code)
        parts = [self.chars(_literal_set(ord(char), flags)) for char in image]
        if len(parts) == 1:
            return parts[0]
        return "(?:{})".format("".join(p[0] for p in parts)), "(?:{})".format("".join(p[1] for p in parts))

    def item(self, op: Any, av: Any, flags: int, tail: bool) -> tuple[str, str]:
        if op in _REFUSED:
            raise PatternError(_REFUSED[op], str(op))
        if op is C.LITERAL:
            return self.literal(av, flags)
        if op is C.NOT_LITERAL:
            image = fold(chr(av)) if self.folding else chr(av)
            code = ord(image) if len(image) == 1 else av
            return self.chars(CS.complement(_literal_set(code, flags)))
        if op is C.ANY:
            return self.chars(CS.ALL if flags & DOTALL else CS.complement(((10, 10),)))
        if op is C.IN:
            return self.chars(_in_set(av, flags, self.folding))
        if op is C.BRANCH:
            parts = [self.sequence(branch, flags, tail) for branch in av[1]]
            return "(?:{})".format("|".join(p[0] for p in parts)), "(?:{})".format("|".join(p[1] for p in parts))
        if op is C.SUBPATTERN:
            _group, add, remove, body = av
            r2, py = self.sequence(body, (flags | add) & ~remove, tail)
            return f"(?:{r2})", f"(?:{py})"
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):
            low, high, body = av
            r2, py = self.sequence(body, flags, False)
            count = f"{{{low},}}" if high == C.MAXREPEAT else f"{{{low},{high}}}"
            lazy = "?" if op is C.MIN_REPEAT else ""
            return f"(?:{r2}){count}{lazy}", f"(?:{py}){count}{lazy}"
        if op is C.AT:
            return self.anchor(av, flags, tail)
        raise PatternError("unsupported", str(op))

    def anchor(self, at: Any, flags: int, tail: bool) -> tuple[str, str]:
        if at is C.AT_BEGINNING_STRING or (at is C.AT_BEGINNING and not flags & MULTILINE):
            return r"\A", r"\A"
        if at is C.AT_BEGINNING:
            return r"(?m:^)", r"(?:\A|(?<=\n))"
        if at is C.AT_END_STRING:
            return r"\z", r"\Z"
        if at is C.AT_END and flags & MULTILINE:
            return r"(?m:$)", r"(?=\n|\Z)"
        if at is C.AT_END:
            # re's $ holds at the end and before a final line break. At the pattern's end the
            # break may be consumed; elsewhere RE2 takes any line break and regex confirms.
            if tail:
                return r"(?:\n?\z)", r"(?=\n?\Z)"
            self.confirm = True
            return r"(?m:$)", r"(?=\n?\Z)"
        if at in (C.AT_BOUNDARY, C.AT_NON_BOUNDARY):
            self.confirm = True
            w = CS.python_class(_word(flags))
            if at is C.AT_BOUNDARY:
                return "", f"(?:(?<={w})(?!{w})|(?<!{w})(?={w}))"
            # re 3.11: \B never matches in an empty text.
            return "", rf"(?:(?<={w})(?={w})|(?<!{w})(?!{w})(?:(?<=[\s\S])|(?=[\s\S])))"
        raise PatternError("unsupported", str(at))


@lru_cache(maxsize=512)
def translate(pattern: str, *, ignorecase: bool, folding: bool) -> Translation:
    """RE2 and regex patterns that mean what ``re.compile(pattern, re.I if ignorecase)`` means
    (on folded text and with folded literals when ``folding``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # re's FutureWarnings about nested sets
            parsed = _parser.parse(pattern, IGNORECASE if ignorecase else 0)
    except re.error as exc:
        raise PatternError("syntax", str(exc)) from None
    if parsed.state.flags & C.SRE_FLAG_LOCALE:
        raise PatternError("unsupported", "LOCALE")
    writer = _Writer(folding)
    r2, py = writer.sequence(parsed, parsed.state.flags, True)
    return Translation(r2, py, writer.confirm)


# --- keywords ------------------------------------------------------------------------------


def word_chars() -> CS.Ranges:
    """What "whole word" keeps apart: Python's word characters except CJK ones, each of which
    is a word of its own (Japanese and Chinese write no spaces between words)."""
    return _word_chars()


@lru_cache(maxsize=1)
def _word_chars() -> CS.Ranges:
    return CS.difference(CS.word(), CS.union(CJK_RANGES))


def keyword(word: str, *, ignorecase: bool, folding: bool, whole_word: bool) -> Translation:
    """One keyword as a literal, kept apart from word characters at an end that is one."""
    if folding:
        word = fold(word)
    body = translate(re.escape(word), ignorecase=ignorecase, folding=False)
    if not whole_word or not word:
        return body
    wc = word_chars()
    apart, py_class = CS.re2_class(CS.complement(wc)), CS.python_class(wc)
    left = CS.contains(wc, ord(word[0]))
    right = CS.contains(wc, ord(word[-1]))
    r2 = (rf"(?:\A|{apart})" if left else "") + f"(?:{body.re2})" + (rf"(?:{apart}|\z)" if right else "")
    py = (f"(?<!{py_class})" if left else "") + f"(?:{body.python})" + (f"(?!{py_class})" if right else "")
    return Translation(r2, py, False)


@lru_cache(maxsize=256)
def keywords(
    words: tuple[str, ...], *, any_of: bool, ignorecase: bool, folding: bool, whole_word: bool
) -> tuple[Translation, ...]:
    """One translation for "any" of the keywords, or one per keyword for "all"."""
    each = [keyword(w, ignorecase=ignorecase, folding=folding, whole_word=whole_word) for w in words]
    if not any_of:
        return tuple(each)
    # Longest first, so a highlight covers "refunded" rather than "refund".
    each.sort(key=lambda t: -len(t.python or ""))
    return (Translation("|".join(t.re2 for t in each), "|".join(f"(?:{t.python})" for t in each), False),)
