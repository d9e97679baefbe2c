"""Japanese personal names found by GiNZA, including those written with no honorific and no cue
around them (山田が来た, 担当は佐藤です, 鈴木一郎と田中花子), which the patterns of `pii_names` miss.

GiNZA's model (`ja_ginza`, a spaCy pipeline installed as a PyPI package, so nothing is ever
downloaded) is loaded once per process through the model cache of llm/loading.py, the first
time a Japanese text is read, and released with the other cached models when it has been idle.
Only its tokenizer, tok2vec and named-entity layers run; the parser and the rest are not loaded.

Reading is the slow part of personal data detection (tens of milliseconds for a sentence on
one core, against microseconds for the patterns), so the text is read in segments, sentences
cut to at most `SEGMENT_LIMIT` characters, and most segments never reach the network:

- a segment with no kanji or katakana is skipped (a name the model finds must hold one);
- a segment goes through the network (tok2vec and the named-entity layer, nearly all the cost)
  only when SudachiPy's dictionary, GiNZA's tokenizer, marks a proper noun in it (固有名詞: a
  person's, a place's, an organisation's name). On the benchmark's Japanese texts that is one
  segment in four, and of the 226 names the model found in all of them, 5 were in the others,
  4 of which were not names (物質的, 高階関数);
- each segment's names are kept in a bounded cache, so a sentence that recurs (a system
  prompt, a template, a long run of one word) is read once.

What the model calls a Person is kept when it looks like a Japanese name: two characters or
more of kanji and kana (one space allowed between family and given name), with a kanji or a
katakana among them, and not a common noun from the stop lists of `pii_names` (お客, 担当者).
Names in Latin letters are left to the patterns.

Plain Python.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from curation.quality.pii_names import _japanese_name_plausible
from llm.loading import ModelLoadError, cached
from text.cjk import KANJI_CLASS
from text.i18n import gettext as _

MODEL = "ja_ginza"
# The cache entry's name in the model cache's log: "named-entity model ja_ginza".
CACHE_WHAT = "named-entity model"
SEGMENT_LIMIT = 256
CACHE_SIZE = 16_384
# The labels of GiNZA's extended named-entity set that name a person.
PERSON_LABELS = frozenset(["Person"])
# In the part of speech SudachiPy's dictionary gives a token (名詞-固有名詞-人名-姓): a proper noun.
PROPER_NOUN = "固有名詞"

_KATAKANA = "\u30a1-\u30fa"
_NAME_CHARS = f"{KANJI_CLASS}\u3041-\u3096{_KATAKANA}\u30fb\u30fc"
_NAME = re.compile(f"[{_NAME_CHARS}]{{1,12}}(?: [{_NAME_CHARS}]{{1,12}})?")
_KANJI_OR_KATAKANA = re.compile(f"[{KANJI_CLASS}{_KATAKANA}]")
_SENTENCE_END = re.compile("[。！？!?\n]")
# The model sometimes takes the honorific into the name (山田様); it stays outside, as it does
# for the patterns ("[NAME]様").
_HONORIFIC_END = re.compile("(?:さん|さま|様|氏|殿|くん|君|ちゃん|先生)$")
_SOFT_BREAKS = "、，, "

# Segment -> the (start, end) of the persons in it. One lock for the model and the cache: a
# spaCy pipeline is not documented as safe to call from two threads at once.
_found: OrderedDict[str, tuple[tuple[int, int], ...]] = OrderedDict()
_lock = threading.Lock()


def _load() -> Any:
    try:
        import spacy

        return spacy.load(MODEL, exclude=["parser", "morphologizer", "compound_splitter", "bunsetu_recognizer"])
    except (ImportError, OSError) as exc:
        raise ModelLoadError(
            _(
                "Japanese names are found with GiNZA's model %(model)s, which could not be loaded (%(error)s). "
                "Install the packages of requirements.txt (ginza and ja-ginza) on this machine."
            )
            % {"model": MODEL, "error": exc}
        ) from exc


def model() -> Any:
    """The GiNZA pipeline, from the model cache (loaded on first use, in about a second)."""
    return cached(CACHE_WHAT, MODEL, _load)


def segments(text: str) -> Iterator[tuple[int, str]]:
    """(start, segment) for each sentence of ``text`` that holds a kanji or katakana, long ones
    cut at a comma or space, or at `SEGMENT_LIMIT` characters where there is none."""
    start = 0
    for match in _SENTENCE_END.finditer(text):
        yield from _cut(text, start, match.end())
        start = match.end()
    yield from _cut(text, start, len(text))


def _cut(text: str, start: int, end: int) -> Iterator[tuple[int, str]]:
    while start < end:
        stop = end
        if end - start > SEGMENT_LIMIT:
            window_end = start + SEGMENT_LIMIT
            soft = max(text.rfind(ch, start, window_end) for ch in _SOFT_BREAKS)
            stop = soft + 1 if soft > start + SEGMENT_LIMIT // 2 else window_end
        if _KANJI_OR_KATAKANA.search(text, start, stop):
            yield start, text[start:stop]
        start = stop


def _persons(pieces: list[str]) -> dict[str, tuple[tuple[int, int], ...]]:
    """Each piece's persons, read by the model for the pieces the cache does not hold."""
    with _lock:
        known = {piece: _found[piece] for piece in pieces if piece in _found}
        todo = list(dict.fromkeys(piece for piece in pieces if piece not in known))
        if todo:
            nlp = model()
            docs = [nlp.make_doc(piece) for piece in todo]
            # Only a segment where the dictionary marks a proper noun goes through the network.
            named = [i for i, doc in enumerate(docs) if any(PROPER_NOUN in token.tag_ for token in doc)]
            read = nlp.pipe([docs[i] for i in named], batch_size=32)
            persons = {i: _persons_in(doc) for i, doc in zip(named, read, strict=True)}
            for i, piece in enumerate(todo):
                known[piece] = _found[piece] = persons.get(i, ())
        for piece in known:
            _found.move_to_end(piece)
        while len(_found) > CACHE_SIZE:
            _found.popitem(last=False)
    return known


def _persons_in(doc: Any) -> tuple[tuple[int, int], ...]:
    return tuple((e.start_char, e.end_char) for e in doc.ents if e.label_ in PERSON_LABELS)


def looks_like_a_name(text: str, start: int, end: int) -> bool:
    name = text[start:end]
    if not _NAME.fullmatch(name) or not _KANJI_OR_KATAKANA.search(name) or len(name.replace(" ", "")) < 2:
        return False
    return _japanese_name_plausible(text, start, name)


def find_names(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each Japanese name GiNZA finds in ``text``, sorted by start."""
    pieces = list(segments(text))
    if not pieces:
        return []
    persons = _persons([piece for _, piece in pieces])
    spans = []
    for offset, piece in pieces:
        for start, end in persons[piece]:
            honorific = _HONORIFIC_END.search(piece, start, end)
            end = honorific.start() if honorific else end
            while end > start and piece[end - 1] == "・":  # バラク・ of バラク・オバマ cut short
                end -= 1
            spans.append((offset + start, offset + end))
    return [(s, e) for s, e in spans if looks_like_a_name(text, s, e)]
