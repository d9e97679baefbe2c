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

Plain Python: no Django models here. The service feeds it chunks of examples.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
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


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def field_text(metadata: Any, key: str) -> str | None:
    """What a metadata rule with keywords or a pattern searches: the field's text (a list's
    items one per line), or None when the example lacks the field."""
    value = metadata.get(key) if isinstance(metadata, dict) else None
    if value is None or isinstance(value, str):
        return value
    return "\n".join(_as_text(v) for v in value) if isinstance(value, list) else _as_text(value)


@dataclass
class Corpus:
    """A chunk of examples as rules see them; texts per target are built once and shared."""

    messages: Sequence[Sequence[dict[str, Any]]]
    metadata: Sequence[dict[str, Any]] = ()
    ids: Sequence[int] = ()  # the examples' ids, for providers that must not count an example as its own evidence
    timeouts: dict[Any, int] = field(default_factory=dict)  # rule key → rows it abstained on for a timeout
    _texts: dict[Any, list[str]] = field(default_factory=dict, repr=False)
    _fields: dict[Any, list[str | None]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.metadata:
            self.metadata = [{} for _ in self.messages]

    def __len__(self) -> int:
        return len(self.messages)

    def texts(self, target: str) -> list[str]:
        if target not in self._texts:
            self._texts[target] = [target_text(m, target) for m in self.messages]
        return self._texts[target]

    def source(self, source: tuple[str, str, bool]) -> list[str]:
        """("text", target, folded) or ("field", metadata key, folded): the texts searched."""
        if source not in self._texts:
            kind, name, folded = source
            if folded:
                # NFKC leaves ASCII as it is; most texts are, and the check is cheaper.
                self._texts[source] = [t if t.isascii() else fold(t) for t in self.source((kind, name, False))]
            elif kind == "text":
                self._texts[source] = self.texts(name)
            else:
                self._texts[source] = [t or "" for t in self.fields(name)]
        return self._texts[source]

    def fields(self, key: str) -> list[str | None]:
        if ("fields", key) not in self._fields:
            self._fields[("fields", key)] = [field_text(m, key) for m in self.metadata]
        return self._fields[("fields", key)]

    def has_field(self, key: str) -> np.ndarray:
        return np.fromiter((t is not None for t in self.fields(key)), dtype=bool, count=len(self))


# Providers for the rules that need a model: they return, for each example of the corpus,
# whether the rule votes. The service builds them (embeddings, the generation backend).
Provider = Callable[[RuleSpec, Corpus], np.ndarray]


@lru_cache(maxsize=512)
def _confirmer(pattern: str) -> Any:
    return regex.compile(pattern, regex.V0)


class _TextSet:
    """All keyword and regex rules reading one text, compiled into one RE2 Set."""

    def __init__(self) -> None:
        self.patterns: list[str] = []
        # (column, rule key, pattern indices that must all match, patterns regex must confirm)
        self.rules: list[tuple[int, Any, list[int], list[str]]] = []

    def add(self, column: int, key: Any, translations: Sequence[Translation]) -> None:
        first = len(self.patterns)
        self.patterns.extend(t.re2 for t in translations)
        confirm = [t.python for t in translations if t.confirm and t.python is not None]
        self.rules.append((column, key, list(range(first, len(self.patterns))), confirm))

    def apply(self, texts: list[str], L: np.ndarray, labels: dict[int, int], timeouts: dict[Any, int]) -> None:
        matcher = re2.Set.SearchSet(S.re2_options())
        for pattern in self.patterns:
            matcher.Add(pattern)
        matcher.Compile()
        match = matcher._set.Match  # the C++ call itself: one per text for all rules of this target
        n_patterns = len(self.patterns)
        results = list(map(match, map(str.encode, texts)))  # map: no Python frame per text
        if n_patterns == 1:
            hits = np.fromiter(map(bool, results), dtype=bool, count=len(texts))[:, None]
        else:
            # Rows (text index) and pattern indices of every hit, as flat arrays.
            counts = np.fromiter((len(r) for r in results), dtype=np.int64, count=len(results))
            hits = np.zeros((len(texts), n_patterns), dtype=bool)
            if counts.sum():
                rows = np.repeat(np.arange(len(texts)), counts)
                cols = np.fromiter((p for r in results for p in r), dtype=np.int64, count=int(counts.sum()))
                hits[rows, cols] = True
        for column, key, needed, confirm in self.rules:
            voted = hits[:, needed[0]] if len(needed) == 1 else hits[:, needed].all(axis=1)
            if confirm:
                voted = _confirmed(voted, texts, confirm, key, timeouts)
            L[voted, column] = labels[column]


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
    if params["unit"] == "chars":
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    else:
        lengths = np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
    voted = np.ones(len(texts), dtype=bool)
    if params["min"] is not None:
        voted &= lengths >= params["min"]
    if params["max"] is not None:
        voted &= lengths <= params["max"]
    return voted


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


def _text_source(rule: RuleSpec) -> tuple[str, str, bool]:
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
    sets: dict[tuple[str, str, bool], _TextSet] = {}
    labels = {column: rule.label for column, rule in enumerate(every)}
    for column, rule in enumerate(every):
        if _searches(rule):
            sets.setdefault(_text_source(rule), _TextSet()).add(column, rule.key, S.text_translations(rule.params))
        elif rule.kind == S.LENGTH:
            L[_length_votes(rule.params, corpus.texts(rule.target)), column] = rule.label
        elif rule.kind == S.METADATA:
            voted = np.fromiter(
                (metadata_matches(rule.params, m) for m in corpus.metadata), dtype=bool, count=len(corpus)
            )
            L[voted, column] = rule.label
        elif rule.kind in (S.SIMILARITY, S.ZERO_SHOT):
            provider = similarity if rule.kind == S.SIMILARITY else zero_shot
            if provider is None:
                raise RuleError("kind", _("This kind of rule needs a model that is not available here."))
            L[np.asarray(provider(rule, corpus), dtype=bool), column] = rule.label
        elif rule.kind != S.COMBINE:
            raise RuleError("kind", _("Unknown rule kind %(kind)s.") % {"kind": repr(rule.kind)})
    for source, text_set in sets.items():
        text_set.apply(corpus.source(source), L, labels, corpus.timeouts)
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
