"""The vectorised rule applier: rules × examples → Snorkel's label matrix.

Snorkel's ``PandasLFApplier`` calls every labeling function on every row in Python. Here all
the text rules (keywords and regular expressions) of one target are compiled into a single
RE2 ``Set``, and each text is scanned once, in C, for all of them together; length and
metadata rules are numpy comparisons. The output is exactly the matrix Snorkel's applier
would build for the same rules written as labeling functions: ``L[i, j]`` is the label index
rule ``j`` votes for example ``i``, or ``ABSTAIN`` (-1).

Plain Python: no Django models here. The service feeds it chunks of examples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import re2
from django.utils.translation import gettext as _

from curation.rules import spec as S
from curation.rules.spec import RuleError, RuleSpec

ABSTAIN = -1

# A letter, digit or underscore is a word character: the same set as Python's \w on text.
_WORD = r"\pL\pN_"


def target_text(messages: Sequence[dict[str, Any]], target: str) -> str:
    """The text a rule reads: the user turns, the assistant turns, or both, one per line."""
    if target == S.BOTH:
        roles: tuple[str, ...] = ("user", "assistant")
    else:
        roles = (target,)
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("role") in roles)


@dataclass
class Corpus:
    """A chunk of examples as rules see them; texts per target are built once and shared."""

    messages: Sequence[Sequence[dict[str, Any]]]
    metadata: Sequence[dict[str, Any]] = ()
    ids: Sequence[int] = ()  # the examples' ids, for providers that must not count an example as its own evidence
    _texts: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.metadata:
            self.metadata = [{} for _ in self.messages]

    def __len__(self) -> int:
        return len(self.messages)

    def texts(self, target: str) -> list[str]:
        if target not in self._texts:
            self._texts[target] = [target_text(m, target) for m in self.messages]
        return self._texts[target]


# Providers for the rules that need a model: they return, for each example of the corpus,
# whether the rule votes. The service builds them (embeddings, the generation backend).
Provider = Callable[[RuleSpec, Corpus], np.ndarray]


def keyword_patterns(params: dict[str, Any]) -> list[str]:
    """RE2 patterns for a keyword rule: one alternation for "any", one per keyword for "all"."""
    flags = "" if params["case_sensitive"] else "(?i)"
    escaped = [re2.escape(k) for k in params["keywords"]]
    if params["whole_word"]:
        wrap = flags + rf"(?:^|[^{_WORD}])(?:%s)(?:[^{_WORD}]|$)"
    else:
        wrap = flags + "(?:%s)"
    if params["mode"] == "all":
        return [wrap % e for e in escaped]
    return [wrap % "|".join(escaped)]


def regex_pattern(params: dict[str, Any]) -> str:
    return params["pattern"] if params["case_sensitive"] else "(?i)" + params["pattern"]


class _TextSet:
    """All keyword and regex rules reading one target, compiled into one RE2 Set."""

    def __init__(self) -> None:
        self.patterns: list[str] = []
        self.rules: list[tuple[int, list[int]]] = []  # (column, pattern indices that must all match)

    def add(self, column: int, patterns: list[str]) -> None:
        first = len(self.patterns)
        self.patterns.extend(patterns)
        self.rules.append((column, list(range(first, len(self.patterns)))))

    def apply(self, texts: list[str], L: np.ndarray, labels: dict[int, int]) -> None:
        matcher = re2.Set.SearchSet(S.re2_options())
        for pattern in self.patterns:
            matcher.Add(pattern)
        matcher.Compile()
        match = matcher._set.Match  # the C++ call itself: one per text for all rules of this target
        n_patterns = len(self.patterns)
        if n_patterns == 1:
            hit = np.fromiter((bool(match(t.encode())) for t in texts), dtype=bool, count=len(texts))
            column, _needed = self.rules[0]
            L[hit, column] = labels[column]
            return
        # Rows (text index) and pattern indices of every hit, as flat arrays.
        results = [match(t.encode()) for t in texts]
        counts = np.fromiter((len(r) for r in results), dtype=np.int64, count=len(results))
        hits = np.zeros((len(texts), n_patterns), dtype=bool)
        if counts.sum():
            rows = np.repeat(np.arange(len(texts)), counts)
            cols = np.fromiter((p for r in results for p in r), dtype=np.int64, count=int(counts.sum()))
            hits[rows, cols] = True
        for column, needed in self.rules:
            voted = hits[:, needed[0]] if len(needed) == 1 else hits[:, needed].all(axis=1)
            L[voted, column] = labels[column]


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


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


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


def apply_rules(
    rules: Sequence[RuleSpec],
    corpus: Corpus,
    *,
    similarity: Provider | None = None,
    zero_shot: Provider | None = None,
) -> np.ndarray:
    """The label matrix, shape (examples, rules), int64, ABSTAIN where a rule does not vote."""
    L = np.full((len(corpus), len(rules)), ABSTAIN, dtype=np.int64)
    if not len(corpus) or not rules:
        return L
    sets: dict[str, _TextSet] = {}
    labels = {column: rule.label for column, rule in enumerate(rules)}
    for column, rule in enumerate(rules):
        if rule.kind == S.KEYWORDS:
            sets.setdefault(rule.target, _TextSet()).add(column, keyword_patterns(rule.params))
        elif rule.kind == S.REGEX:
            sets.setdefault(rule.target, _TextSet()).add(column, [regex_pattern(rule.params)])
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
        else:
            raise RuleError("kind", _("Unknown rule kind %(kind)s.") % {"kind": repr(rule.kind)})
    for target, text_set in sets.items():
        text_set.apply(corpus.texts(target), L, labels)
    return L


def match_spans(rule: RuleSpec, text: str, *, limit: int = 20) -> list[tuple[int, int]]:
    """Character spans of what a keyword or regex rule matched in a text, for highlighting."""
    spans: list[tuple[int, int]] = []
    if rule.kind == S.KEYWORDS:
        params = rule.params
        flags = 0 if params["case_sensitive"] else re.IGNORECASE
        alternatives = "|".join(re.escape(k) for k in sorted(params["keywords"], key=len, reverse=True))
        # Escaped literals only: this pattern cannot backtrack badly.
        pattern = rf"(?<!\w)(?:{alternatives})(?!\w)" if params["whole_word"] else f"(?:{alternatives})"
        for m in re.finditer(pattern, text, flags):
            spans.append(m.span())
            if len(spans) >= limit:
                break
    elif rule.kind == S.REGEX:
        compiled = S.compile_pattern(rule.params["pattern"], case_sensitive=rule.params["case_sensitive"])
        for m in compiled.finditer(text):
            if m.end() > m.start():
                spans.append(m.span())
            if len(spans) >= limit:
                break
    return spans


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
