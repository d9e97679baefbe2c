"""Word-level diff of a model's answer against the reference, for the side-by-side page.

Plain Python (no Django): `text.diff`'s word diff (each Japanese or Chinese character a token of
its own), named for this page ("same" rather than "equal") and skipped for texts too long to
compare while a page waits.
"""

from __future__ import annotations

from text.diff import pieces, word_diff

Segment = tuple[str, str]  # (op, text); op: "same", "insert" (only in the output), "delete" (only in the reference)

# Comparing token lists costs up to the product of their lengths: past this many tokens (both
# texts together) a page of samples would take seconds, so the output is shown without a diff.
MAX_TOKENS = 4000


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
    segments: list[Segment] = []
    for op, text in word_diff(reference, output):
        op = "same" if op == "equal" else op
        if segments and segments[-1][0] == op:
            segments[-1] = (op, segments[-1][1] + text)
        else:
            segments.append((op, text))
    return segments
