"""The vectorised rule applier: rules × examples → Snorkel's label matrix.

Snorkel's ``PandasLFApplier`` calls every labeling function on every row in Python. Here all
the text rules (keywords and regular expressions) that read the same text are compiled into a
single RE2 ``Set``, and each text is scanned once, in C, for all of them together; length and
metadata rules are numpy comparisons, and combinations are boolean operations on the columns
of the rules they combine. The output is exactly the matrix Snorkel's applier would build for
the same rules written as labeling functions with Python's ``re``: ``L[i, j]`` is the label
index rule ``j`` votes for example ``i``, or ``ABSTAIN`` (-1).

Patterns mean what ``re`` means (text/pyregex.py). The few RE2 cannot express exactly (``\\b``,
``\\B``, ``$`` inside a pattern) find candidates on RE2, and the ``regex`` package confirms each
candidate under a timeout: on a timeout the rule abstains for that row and ``Corpus.timeouts``
counts it, per rule.

A chunk's texts come from the messages, or already built and width-folded from the rule-text
store (``example_texts`` of each example, kept by curation/rules/textstore.py): building them
cost a run more than matching.

Plain Python: no Django models here. The service feeds it chunks of examples.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from operator import eq, is_not, itemgetter, methodcaller
from typing import Any

import numpy as np
import re2
import regex
from django.utils.translation import gettext as _

from curation.rules import spec as S
from curation.rules.spec import RuleError, RuleSpec
from text.pyregex import Translation, fold, fold_with_offsets, map_span

ABSTAIN = -1
# A confirmation (regex package, backtracking) gets this long per row; a rule that times out
# this often in one chunk abstains on the rest of its candidates there (counted as timeouts).
CONFIRM_TIMEOUT_S = 0.05
MAX_TIMEOUTS = 5


def target_text(messages: Sequence[dict[str, Any]], target: str) -> str:
    """The text a rule reads: the user turns, the assistant turns, or both, one per line."""
    if target == S.BOTH:
        roles: tuple[str, ...] = ("user", "assistant")
    else:
        roles = (target,)
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("role") in roles)


def example_texts(messages: Sequence[dict[str, Any]]) -> tuple[str | None, ...]:
    """What the rule-text store (curation/rules/textstore.py) keeps of one example: the text of
    each target (``S.TARGETS`` order) width-folded, as rules read them by default, then each as
    written where folding changed it (else None)."""
    written = [target_text(messages, target) for target in S.TARGETS]
    folded = folded_texts(written)
    return (*folded, *(None if f == w else w for w, f in zip(written, folded, strict=True)))


def folded_texts(texts: Iterable[str]) -> list[str]:
    """The texts width-folded; NFKC leaves ASCII as it is, and most texts are, so it is
    checked first (cheaper than normalising)."""
    return [t if t.isascii() else fold(t) for t in texts]


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def field_text(metadata: Any, key: str) -> str | None:
    """What a metadata rule with keywords or a pattern searches: the field's text (a list's
    items one per line), or None when the example lacks the field."""
    value = metadata.get(key) if isinstance(metadata, dict) else None
    return _value_text(value)


def _value_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        try:
            return "\n".join(value)  # a list of texts, the usual list (tags)
        except TypeError:
            return "\n".join(map(_as_text, value))
    return _as_text(value)


@dataclass
class Corpus:
    """A chunk of examples as rules see them; texts per target are built once and shared.

    The texts come from ``messages``, or from ``stored``: each example's ``example_texts``, kept
    by the rule-text store. A corpus given ``stored`` needs no messages."""

    messages: Sequence[Sequence[dict[str, Any]]] = ()
    metadata: Sequence[dict[str, Any]] = ()
    ids: Sequence[int] = ()  # the examples' ids, for providers that must not count an example as its own evidence
    timeouts: dict[Any, int] = field(default_factory=dict)  # rule key → rows it abstained on for a timeout
    stored: Sequence[Sequence[str | None]] = ()
    _texts: dict[Any, list[str]] = field(default_factory=dict, repr=False)
    _values: dict[str, list[Any]] = field(default_factory=dict, repr=False)
    _fields: dict[str, list[str | None]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.messages and self.stored and len(self.messages) != len(self.stored):
            raise ValueError("stored texts and messages differ in length")
        self._size = len(self.stored) or len(self.messages)
        if not self.metadata:
            self.metadata = [{} for _ in range(self._size)]

    def __len__(self) -> int:
        return self._size

    def texts(self, target: str) -> list[str]:
        """The texts of a target as written (not folded)."""
        return self.source(("text", target, False))

    def source(self, source: tuple[str, str, bool]) -> list[str]:
        """("text", target, folded) or ("field", metadata key, folded): the texts searched."""
        if source not in self._texts:
            kind, name, folded = source
            if kind == "text" and self.stored:
                self._texts[source] = self._stored_texts(name, folded)
            elif folded:
                self._texts[source] = folded_texts(self.source((kind, name, False)))
            elif kind == "text":
                self._texts[source] = [target_text(m, name) for m in self.messages]
            else:
                self._texts[source] = [t or "" for t in self.fields(name)]
        return self._texts[source]

    def distinct(self, source: tuple[str, str, bool]) -> tuple[list[str], np.ndarray]:
        """A metadata field's distinct texts (folded if asked) and, per example, the index of
        its own: field values repeat (a channel, a list of tags), so each is searched once."""
        _kind, key, folded = source
        written = self.fields(key)
        index = {text: i for i, text in enumerate(dict.fromkeys(written))}
        rows = np.fromiter(map(index.__getitem__, written), dtype=np.int64, count=len(self))
        texts = [text or "" for text in index]
        return (folded_texts(texts) if folded else texts), rows

    def _stored_texts(self, target: str, folded: bool) -> list[str]:
        column = S.TARGETS.index(target)
        texts = list(map(itemgetter(column), self.stored))
        if folded:
            return texts
        written = map(itemgetter(column + len(S.TARGETS)), self.stored)
        return [f if w is None else w for f, w in zip(texts, written, strict=True)]

    def values(self, key: str) -> list[Any]:
        """Each example's value of a metadata field (None where it lacks the field)."""
        if key not in self._values:
            try:
                self._values[key] = list(map(methodcaller("get", key), self.metadata))
            except AttributeError:  # not every example's metadata is an object
                self._values[key] = [m.get(key) if isinstance(m, dict) else None for m in self.metadata]
        return self._values[key]

    def fields(self, key: str) -> list[str | None]:
        if key not in self._fields:
            values = self.values(key)
            try:  # texts, and lists of texts, the usual fields, without a call per example
                self._fields[key] = [
                    v if v is None or v.__class__ is str else "\n".join(v) if v.__class__ is list else _value_text(v)
                    for v in values
                ]
            except TypeError:  # a list holding something else than texts
                self._fields[key] = [_value_text(v) for v in values]
        return self._fields[key]

    def has_field(self, key: str) -> np.ndarray:
        return np.fromiter(map(is_not, self.values(key), repeat(None)), dtype=bool, count=len(self))


def stored_corpus(
    stored: Sequence[Sequence[str | None]], metadata: Sequence[dict[str, Any]], ids: Sequence[int]
) -> Corpus:
    """A corpus of examples whose texts were stored (``example_texts`` of each)."""
    return Corpus(metadata=metadata, ids=ids, stored=stored)


# Providers for the rules that need a model: they return, for each example of the corpus,
# whether the rule votes. The service builds them (embeddings, the generation backend).
Provider = Callable[[RuleSpec, Corpus], np.ndarray]


@lru_cache(maxsize=512)
def _confirmer(pattern: str) -> Any:
    return regex.compile(pattern, regex.V0)


@lru_cache(maxsize=16)
def _matcher(patterns: tuple[str, ...]) -> Callable[[bytes], list[int]]:
    """One compiled RE2 Set for these patterns, kept for the next chunk and the next run (as
    ``re`` keeps its compiled patterns): compiling Unicode classes costs more than a scan."""
    matcher = re2.Set.SearchSet(S.re2_options())
    for pattern in patterns:
        matcher.Add(pattern)
    matcher.Compile()
    return matcher._set.Match  # the C++ call itself: one per text for all rules of this text


def _extend_counting(flat: list[int]) -> Callable[[list[int]], int]:
    extend = flat.extend

    def take(found: list[int]) -> int:
        extend(found)
        return len(found)

    return take


Source = tuple[str, str, bool]  # ("text", target, folded) or ("field", metadata key, folded)


class _TextSet:
    """The patterns searched in one source, compiled together into one RE2 Set."""

    def __init__(self) -> None:
        self.patterns: list[str] = []

    def add(self, translations: Sequence[Translation]) -> list[int]:
        first = len(self.patterns)
        self.patterns.extend(t.re2 for t in translations)
        return list(range(first, len(self.patterns)))

    def hits(self, texts: list[str]) -> np.ndarray:
        """(texts, patterns): whether each pattern occurs in each text."""
        match = _matcher(tuple(self.patterns))
        n_texts, n_patterns = len(texts), len(self.patterns)
        # map: no Python frame per text. Each text's list of matches is consumed as it comes:
        # holding 100,000 of them would set the cyclic garbage collector walking every live
        # object of the process, which costs more than the matching.
        found = map(match, map(str.encode, texts))
        if n_patterns == 1:
            return np.fromiter(map(bool, found), dtype=bool, count=n_texts)[:, None]
        flat: list[int] = []  # the pattern indices of every hit, text after text
        counts = np.fromiter(map(_extend_counting(flat), found), dtype=np.int64, count=n_texts)
        hits = np.zeros((n_texts, n_patterns), dtype=bool)
        hits[np.repeat(np.arange(n_texts), counts), np.array(flat, dtype=np.int64)] = True
        return hits

    def search(self, corpus: Corpus, source: Source) -> np.ndarray:
        if source[0] == "field":
            texts, rows = corpus.distinct(source)
            return self.hits(texts)[rows]
        return self.hits(corpus.source(source))


@dataclass
class _Search:
    """One keyword or regex rule: its column, and for each of its patterns (all must occur)
    where to look: (source, pattern index) pairs, any of which may hold it."""

    column: int
    key: Any
    source: Source  # the text the rule reads, for confirming
    places: list[list[tuple[Source, int]]]
    confirm: list[str]  # patterns the regex package must confirm on RE2's candidates

    def votes(self, hits: dict[Source, np.ndarray], corpus: Corpus) -> np.ndarray:
        found = [np.logical_or.reduce([hits[source][:, i] for source, i in where]) for where in self.places]
        voted = found[0] if len(found) == 1 else np.logical_and.reduce(found)
        if self.confirm:
            voted = _confirmed(voted, corpus.source(self.source), self.confirm, self.key, corpus.timeouts)
        return voted


def _by_turn(rule: RuleSpec, translations: Sequence[Translation]) -> bool:
    """Whether a rule reading both texts can be searched in the user and the assistant texts
    apart: a keyword found in the joined text lies inside one message (the messages are
    joined with a newline, which no keyword holds; NFKC folds each message alike joined or
    not), and a message's ends meet a newline or an end of the text there, which "whole word"
    treats alike. Regular expressions may reach across messages: never."""
    return (
        rule.kind == S.KEYWORDS
        and not any(t.confirm for t in translations)
        and not any("\n" in k or "\n" in fold(k) for k in rule.params["keywords"])
    )


def _plan(every: Sequence[RuleSpec]) -> tuple[dict[Source, _TextSet], list[_Search]]:
    """One text set per source read and a search per rule. Keyword rules reading both texts
    are searched in the user and assistant texts when those are searched anyway: one scan
    less."""
    reading: dict[Source, list[tuple[int, RuleSpec, tuple[Translation, ...]]]] = {}
    for column, rule in enumerate(every):
        if _searches(rule):
            reading.setdefault(_text_source(rule), []).append((column, rule, S.text_translations(rule.params)))
    split: dict[Source, tuple[Source, Source]] = {}
    for folded in (False, True):
        both, turns = ("text", S.BOTH, folded), (("text", S.USER, folded), ("text", S.ASSISTANT, folded))
        if both in reading and all(t in reading for t in turns) and all(_by_turn(*r[1:]) for r in reading[both]):
            split[both] = turns
    sets = {source: _TextSet() for source in reading if source not in split}
    searches = []
    for source, rules in reading.items():
        for column, rule, translations in rules:
            added = [(where, sets[where].add(translations)) for where in split.get(source, (source,))]
            places = [[(where, indices[i]) for where, indices in added] for i in range(len(translations))]
            confirm = [t.python for t in translations if t.confirm and t.python is not None]
            searches.append(_Search(column, rule.key, source, places, confirm))
    return sets, searches


def _confirmed(candidates: np.ndarray, texts: list[str], patterns: list[str], key: Any, timeouts: dict) -> np.ndarray:
    """RE2's candidates that the exact pattern (regex package, with a timeout) also finds."""
    compiled = [_confirmer(p) for p in patterns]
    voted = candidates.copy()
    late = 0
    for row in np.flatnonzero(candidates):
        if late >= MAX_TIMEOUTS:
            voted[row] = False
            late += 1
            continue
        try:
            voted[row] = all(c.search(texts[row], timeout=CONFIRM_TIMEOUT_S) for c in compiled)
        except TimeoutError:
            voted[row] = False
            late += 1
    if late:
        timeouts[key] = timeouts.get(key, 0) + late
    return voted


def _length_votes(params: dict[str, Any], texts: list[str]) -> np.ndarray:
    words = map(len, texts) if params["unit"] == "chars" else map(len, map(str.split, texts))
    lengths = np.fromiter(words, dtype=np.int64, count=len(texts))
    voted = np.ones(len(texts), dtype=bool)
    if params["min"] is not None:
        voted &= lengths >= params["min"]
    if params["max"] is not None:
        voted &= lengths <= params["max"]
    return voted


def _metadata_votes(params: dict[str, Any], corpus: Corpus) -> np.ndarray:
    """Which examples a metadata rule holds for: a whole column at once for the tests of
    presence, equality and membership, else ``metadata_matches`` row by row."""
    op, n = params["op"], len(corpus)
    if op not in ("exists", "missing", "equals", "not_equals", "in"):
        return np.fromiter((metadata_matches(params, m) for m in corpus.metadata), dtype=bool, count=n)
    present = corpus.has_field(params["key"])
    if op in ("exists", "missing"):
        return present if op == "exists" else ~present
    # As metadata_matches compares: a text as it is, anything else as JSON; None where absent.
    texts = [v if v is None or v.__class__ is str else _as_text(v) for v in corpus.values(params["key"])]
    if op == "in":
        return present & np.fromiter(map(set(params["value"]).__contains__, texts), dtype=bool, count=n)
    equal = np.fromiter(map(eq, texts, repeat(params["value"])), dtype=bool, count=n)
    return present & (equal if op == "equals" else ~equal)


def metadata_matches(params: dict[str, Any], metadata: dict[str, Any]) -> bool:
    """Whether one example's metadata satisfies a metadata rule."""
    op, key = params["op"], params["key"]
    present = isinstance(metadata, dict) and key in metadata and metadata[key] is not None
    if op == "exists":
        return present
    if op == "missing":
        return not present
    if not present:
        return False
    value = metadata[key]
    if op in ("gt", "lt"):
        if isinstance(value, bool):
            return False
        try:
            number = float(value)
        except (TypeError, ValueError):
            return False
        return number > params["value"] if op == "gt" else number < params["value"]
    if op == "contains":
        wanted = params["value"].casefold()
        if isinstance(value, list):
            return any(_as_text(item).casefold() == wanted for item in value)
        return wanted in _as_text(value).casefold()
    if op == "in":
        return _as_text(value) in params["value"]
    equal = _as_text(value) == params["value"]
    return equal if op == "equals" else not equal


def _text_source(rule: RuleSpec) -> Source:
    if rule.kind == S.METADATA:
        return ("field", rule.params["key"], S.folding(rule.params))
    return ("text", rule.target, S.folding(rule.params))


def _searches(rule: RuleSpec) -> bool:
    return rule.kind in S.TEXT_KINDS or (rule.kind == S.METADATA and rule.params["op"] in S.TEXT_KINDS)


def _combine(rules: Sequence[RuleSpec], L: np.ndarray) -> None:
    """Fill the columns of combinations from the columns of the rules they combine."""
    index = {rule.key: column for column, rule in enumerate(rules)}
    done: dict[int, np.ndarray] = {}

    def holds(column: int, path: tuple[int, ...]) -> np.ndarray:
        rule = rules[column]
        if rule.kind != S.COMBINE:
            return L[:, column] != ABSTAIN
        if column in done:
            return done[column]
        if column in path:
            raise RuleError("rules", _("Combination %(key)s reaches itself.") % {"key": rule.key})
        parts = []
        for key in rule.params["rules"]:
            if key not in index:
                raise RuleError(
                    "rules",
                    _("Combination %(key)s uses rule %(ref)s, which is not among the rules applied.")
                    % {"key": rule.key, "ref": key},
                )
            parts.append(holds(index[key], (*path, column)))
        op = rule.params["op"]
        result = (
            ~parts[0] if op == "not" else np.logical_and.reduce(parts) if op == "and" else np.logical_or.reduce(parts)
        )
        done[column] = result
        L[result, column] = rule.label
        return result

    for column, rule in enumerate(rules):
        if rule.kind == S.COMBINE:
            holds(column, ())


def apply_rules(
    rules: Sequence[RuleSpec],
    corpus: Corpus,
    *,
    similarity: Provider | None = None,
    zero_shot: Provider | None = None,
    operands: Sequence[RuleSpec] = (),
) -> np.ndarray:
    """The label matrix, shape (examples, rules), int64, ABSTAIN where a rule does not vote.

    ``operands`` are rules that combinations among ``rules`` use but that have no column of
    their own (inactive rules, or the rules a previewed combination uses)."""
    keys = {rule.key for rule in rules}
    every = [*rules, *(o for o in operands if o.key not in keys)]
    L = np.full((len(corpus), len(every)), ABSTAIN, dtype=np.int64)
    if not len(corpus) or not rules:
        return L[:, : len(rules)]
    sets, searches = _plan(every)  # before any model is asked: a pattern RE2 refuses fails first
    for column, rule in enumerate(every):
        if _searches(rule):
            continue
        if rule.kind == S.LENGTH:
            L[_length_votes(rule.params, corpus.texts(rule.target)), column] = rule.label
        elif rule.kind == S.METADATA:
            L[_metadata_votes(rule.params, corpus), column] = rule.label
        elif rule.kind in (S.SIMILARITY, S.ZERO_SHOT):
            provider = similarity if rule.kind == S.SIMILARITY else zero_shot
            if provider is None:
                raise RuleError("kind", _("This kind of rule needs a model that is not available here."))
            L[np.asarray(provider(rule, corpus), dtype=bool), column] = rule.label
        elif rule.kind != S.COMBINE:
            raise RuleError("kind", _("Unknown rule kind %(kind)s.") % {"kind": repr(rule.kind)})
    hits = {source: text_set.search(corpus, source) for source, text_set in sets.items()}
    for search in searches:
        L[search.votes(hits, corpus), search.column] = every[search.column].label
    for column, rule in enumerate(every):
        if rule.kind == S.METADATA and _searches(rule):
            L[~corpus.has_field(rule.params["key"]), column] = ABSTAIN
    _combine(every, L)
    return L[:, : len(rules)]


def match_spans(rule: RuleSpec, text: str, *, limit: int = 20) -> list[tuple[int, int]]:
    """Character spans of what a keyword or regex rule matched in a text, for highlighting
    (found in the folded text when the rule folds width, and mapped back to ``text``)."""
    if rule.kind not in S.TEXT_KINDS:
        return []
    folding = S.folding(rule.params)
    searched, starts, ends = fold_with_offsets(text) if folding else (text, [], [])
    spans: list[tuple[int, int]] = []
    for translation in S.text_translations(rule.params):
        if translation.python is None:  # RE2-only syntax: RE2's own spans
            found = (m.span() for m in re2.compile(translation.re2, S.re2_options()).finditer(searched))
        else:
            found = (m.span() for m in _confirmer(translation.python).finditer(searched, timeout=CONFIRM_TIMEOUT_S))
        try:
            for span in found:
                if span[1] > span[0]:
                    spans.append(map_span(span, starts, ends, len(text)) if folding else span)
                if len(spans) >= limit:
                    break
        except TimeoutError:
            pass  # highlighting what was found in time is enough
    return sorted(set(spans))[:limit]


def highlight(text: str, spans: list[tuple[int, int]]) -> list[tuple[str, bool]]:
    """The text cut into (piece, matched) parts; templates escape each piece."""
    parts: list[tuple[str, bool]] = []
    cursor = 0
    for start, end in sorted(spans):
        if start < cursor:
            continue
        if start > cursor:
            parts.append((text[cursor:start], False))
        parts.append((text[start:end], True))
        cursor = end
    if cursor < len(text):
        parts.append((text[cursor:], False))
    return parts
