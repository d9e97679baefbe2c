"""A word diff that reads Japanese too: each CJK character is a token of its own.

The texts are split into tokens that keep everything, whitespace and punctuation included, so
the segments rebuild both texts exactly: words, each CJK character alone (those languages write
no spaces, so a word would be a whole sentence), runs of whitespace, and any other character alone.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from text.cjk import CJK_CLASS

Segment = tuple[str, str]  # (op, text), op one of "equal", "delete" (only in the old text), "insert"

_PIECE = re.compile(rf"[{CJK_CLASS}]|(?:(?![{CJK_CLASS}])\w)+|\s+|.", re.DOTALL)


def pieces(text: str) -> list[str]:
    """The text's tokens, whitespace kept: "".join(pieces(text)) == text."""
    return _PIECE.findall(text)


def word_diff(old: str, new: str) -> list[Segment]:
    """`new` against `old` token by token, as (op, text) segments: the "equal" and "delete" ones
    rebuild `old`, the "equal" and "insert" ones `new`. Each change is its deletion, then its
    insertion; empty segments are left out."""
    a, b = pieces(old), pieces(new)
    # Whitespace is everywhere: as an anchor it only costs time (matches still run across it).
    # autojunk would also drop frequent tokens, and in Japanese every kana is frequent.
    matcher = SequenceMatcher(isjunk=str.isspace, a=a, b=b, autojunk=False)
    segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            segments.append(("equal", "".join(a[i1:i2])))
        else:
            segments.append(("delete", "".join(a[i1:i2])))
            segments.append(("insert", "".join(b[j1:j2])))
    return [(op, text) for op, text in segments if text]
