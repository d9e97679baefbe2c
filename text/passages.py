"""Passages of a document, and a seeded draw of passages across many documents.

A generation template's `{document}` is filled with one passage: a piece of about `size`
characters that keeps whole paragraphs together and, where a paragraph is too long, whole
sentences (English `.!?` followed by a space, Japanese and Chinese `。！？`). Only a sentence
longer than `size` by itself is cut, at a space when there is one.

The draw picks passages uniformly over all passages of all documents (so a long document is
drawn more often than a short one, in proportion to its passages), without repeating a passage
until every one has been drawn, and gives the same passages for the same seed.
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

DEFAULT_SIZE = 1_200
MIN_SIZE = 200

K = TypeVar("K", bound=Hashable)

_PARAGRAPHS = re.compile(r"\n[ \t\u3000]*\n\s*")
# A sentence ends at . ! ? (and closing quotes or brackets) followed by whitespace, so "3.14"
# and "e.g.x" stay whole; or at 。！？ (and closing quotes), which need no space after them.
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*\s+|[。！？]+[」』）】\"'”’)]*\s*")


@dataclass(frozen=True)
class Passage:
    """One passage: `document` is the key of its document, `index` its place in it."""

    document: Hashable
    index: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.document}:{self.index}"


def sentences(paragraph: str) -> list[str]:
    """The paragraph's sentences, each with the space after it (joined, they are the paragraph)."""
    out, start = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        out.append(paragraph[start : match.end()])
        start = match.end()
    if start < len(paragraph):
        out.append(paragraph[start:])
    return [s for s in out if s.strip()]


def _cut(sentence: str, size: int) -> list[str]:
    """A sentence longer than `size` in pieces of at most `size`, at a space where one is in reach."""
    pieces = []
    while len(sentence) > size:
        space = sentence.rfind(" ", size // 2, size)
        end = space + 1 if space > 0 else size
        pieces.append(sentence[:end])
        sentence = sentence[end:]
    if sentence.strip():
        pieces.append(sentence)
    return pieces


def _pieces(text: str, size: int) -> list[tuple[str, bool]]:
    """(piece, starts a paragraph): whole paragraphs where they fit, else their sentences."""
    out: list[tuple[str, bool]] = []
    for paragraph in _PARAGRAPHS.split(text.replace("\r\n", "\n").replace("\r", "\n")):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if len(paragraph) <= size:
            out.append((paragraph, True))
            continue
        first = True
        for sentence in sentences(paragraph):
            for piece in _cut(sentence, size):
                out.append((piece, first))
                first = False
    return out


def split(text: str, size: int = DEFAULT_SIZE) -> list[str]:
    """The text in passages of at most about `size` characters (paragraphs first, then
    sentences); empty for a text of only whitespace."""
    size = max(MIN_SIZE, size)
    passages: list[str] = []
    current = ""
    for piece, new_paragraph in _pieces(text, size):
        joined = (current + ("\n\n" if new_paragraph else "") + piece) if current else piece
        if current and len(joined.strip()) > size:
            passages.append(current.strip())
            current = piece
        else:
            current = joined
    if current.strip():
        passages.append(current.strip())
    return passages


def passages_of(document: Hashable, text: str, size: int = DEFAULT_SIZE) -> list[Passage]:
    """The document's passages with their stable ids (the document's key and the index)."""
    return [Passage(document, index, piece) for index, piece in enumerate(split(text, size))]


def draw_slots(counts: Sequence[tuple[K, int]], k: int, seed: int | str) -> list[tuple[K, int]]:
    """`k` (document, passage index) pairs drawn from documents with these passage counts:
    every passage equally likely, none again until all have been drawn, the same for the same
    seed and counts. Empty when there are no passages."""
    keys = [key for key, n in counts if n > 0]
    ends: list[int] = []
    total = 0
    for _key, n in counts:
        if n > 0:
            total += n
            ends.append(total)
    if total == 0 or k <= 0:
        return []
    drawn: list[tuple[K, int]] = []
    round_number = 0
    while len(drawn) < k:
        # One round draws without repeats; sampling a range keeps a round's memory at its size.
        rng = random.Random(f"{seed}:{round_number}")
        for flat in rng.sample(range(total), min(k - len(drawn), total)):
            at = bisect.bisect_right(ends, flat)
            drawn.append((keys[at], flat - (ends[at - 1] if at else 0)))
        round_number += 1
    return drawn


def draw(documents: Sequence[tuple[Hashable, str]], k: int, seed: int | str, size: int = DEFAULT_SIZE) -> list[Passage]:
    """`k` passages drawn from (key, text) documents as `draw_slots` draws them."""
    split_up = {key: passages_of(key, text, size) for key, text in documents}
    slots = draw_slots([(key, len(found)) for key, found in split_up.items()], k, seed)
    return [split_up[key][index] for key, index in slots]
