"""Word-level diff of a model's answer against the reference, for the side-by-side page.

Plain Python (no Django). The texts are split into tokens that keep everything, whitespace and
punctuation included, so the segments rebuild both texts exactly: words, each Japanese or Chinese
character on its own (those languages write no spaces, so a word would be a whole sentence), runs
of whitespace, and any other character alone. The CJK character class is the one of metrics.py.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from training.evaluation.metrics import _CJK_CLASS

Segment = tuple[str, str]  # (op, text); op: "same", "insert" (only in the output), "delete" (only in the reference)

# Comparing token lists costs up to the product of their lengths: past this many tokens (both
# texts together) a page of samples would take seconds, so the output is shown without a diff.
MAX_TOKENS = 4000

_PIECE = re.compile(rf"[{_CJK_CLASS}]|(?:(?![{_CJK_CLASS}])\w)+|\s+|.", re.DOTALL)


def pieces(text: str) -> list[str]:
    """The text's tokens, whitespace kept: "".join(pieces(text)) == text."""
    return _PIECE.findall(text)


def diffable(reference: str, output: str) -> bool:
    """Whether the two texts are short enough to diff (see MAX_TOKENS)."""
    return len(pieces(reference)) + len(pieces(output)) <= MAX_TOKENS


def answer_diff(reference: str | None, output: str | None) -> list[Segment]:
    """The output against the reference as (op, text) segments, neighbours of one kind merged and,
    within one change, the deletion before the insertion.

    The "same" and "insert" segments rebuild the output, the "same" and "delete" ones the
    reference. Texts longer than MAX_TOKENS together are not compared: the result is the output
    as one "same" segment when the texts are equal, else as one "insert" segment.
    """
    reference, output = reference or "", output or ""
    if not diffable(reference, output):
        if not output:
            return []
        return [("same" if output == reference else "insert", output)]
    a, b = pieces(reference), pieces(output)
    # Whitespace is everywhere: as an anchor it only costs time. autojunk would also drop
    # frequent tokens, and in Japanese every kana is frequent.
    matcher = SequenceMatcher(isjunk=str.isspace, a=a, b=b, autojunk=False)
    segments: list[Segment] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append(segments, "same", "".join(a[i1:i2]))
        else:
            _append(segments, "delete", "".join(a[i1:i2]))
            _append(segments, "insert", "".join(b[j1:j2]))
    return segments


def _append(segments: list[Segment], op: str, text: str) -> None:
    if not text:
        return
    if segments and segments[-1][0] == op:
        segments[-1] = (op, segments[-1][1] + text)
    else:
        segments.append((op, text))
