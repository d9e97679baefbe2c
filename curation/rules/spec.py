"""What a labeling rule is: its kinds, their parameters and how they are checked.

Rules are data. A browser (or the API) sends a kind and a dictionary of parameters; this
module checks every field and returns a clean copy, or raises ``RuleError`` naming the field.
Nothing typed by a user is ever executed. Regular expressions mean what Python's ``re`` makes
of them (text/pyregex.py translates them) and run on RE2, whose matching time is linear in
the text; the few that need ``\\b`` are confirmed on RE2's candidates by the ``regex`` package
under a timeout, so no pattern can hang a worker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import re2
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from text import pyregex
from text.pyregex import PatternError, Translation

KEYWORDS = "keywords"
REGEX = "regex"
LENGTH = "length"
METADATA = "metadata"
SIMILARITY = "similarity"
ZERO_SHOT = "llm"
COMBINE = "combine"
KINDS = (KEYWORDS, REGEX, LENGTH, METADATA, SIMILARITY, ZERO_SHOT, COMBINE)
# The kinds whose text is searched (also what a metadata field is searched with).
TEXT_KINDS = (KEYWORDS, REGEX)

USER = "user"
ASSISTANT = "assistant"
BOTH = "both"
TARGETS = (USER, ASSISTANT, BOTH)

METADATA_OPS = ("equals", "not_equals", "contains", "exists", "missing", "gt", "lt", "in", "keywords", "regex")
COMBINE_OPS = ("and", "or", "not")
MAX_COMBINED = 20

MAX_KEYWORDS = 100
MAX_KEYWORD_LENGTH = 200
MAX_PATTERN_LENGTH = 1000
# RE2 refuses programs above this budget with a clear error instead of growing without bound.
RE2_MAX_MEM = 32 << 20
MAX_INSTRUCTION_LENGTH = 2000


class RuleError(ServiceError):
    """A rule parameter is wrong: ``field`` names it, the message says what to do."""


@dataclass(frozen=True)
class RuleSpec:
    """One rule, ready to apply: it votes ``label`` (an index) or abstains."""

    key: Any  # the rule's id, or a name in tests and previews
    kind: str
    label: int
    target: str = USER
    params: dict[str, Any] = field(default_factory=dict)


def re2_options(*, case_sensitive: bool = True) -> re2.Options:
    options = re2.Options()
    options.max_mem = RE2_MAX_MEM
    options.case_sensitive = case_sensitive
    options.log_errors = False  # refusals reach the user as RuleError, not as log noise
    return options


def _bool(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if isinstance(value, str) and value.lower() in ("true", "on", "1", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "off", "0", "no", ""):
        return False
    if not isinstance(value, bool):
        raise RuleError(name, _("Must be true or false."))
    return value


def _int_or_none(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RuleError(name, _("Must be a whole number.")) from None
    if number < 0:
        raise RuleError(name, _("Must be zero or more."))
    return number


# What a list may hold before it is looked at: room for every keyword, a separator after each,
# and some blank lines or repeats; anything larger is refused unread.
MAX_KEYWORDS_TEXT = MAX_KEYWORDS * (MAX_KEYWORD_LENGTH + 2)
MAX_LIST_ITEMS = MAX_KEYWORDS * 2


def _size_check(value: Any, name: str) -> None:
    """Refuse a list (or the text of one) that is too large before splitting or reading it."""
    if isinstance(value, str) and len(value) > MAX_KEYWORDS_TEXT:
        raise RuleError(
            name,
            _("The list is %(n)d characters long; at most %(limit)d are allowed (%(count)d entries per rule).")
            % {"n": len(value), "limit": MAX_KEYWORDS_TEXT, "count": MAX_KEYWORDS},
        )
    if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
        raise RuleError(
            name,
            _("The list has %(n)d entries; at most %(count)d per rule.") % {"n": len(value), "count": MAX_KEYWORDS},
        )


def _keywords(value: Any) -> list[str]:
    _size_check(value, "keywords")
    if isinstance(value, str):
        # One keyword or phrase per line, or separated by commas, as typed in a form.
        value = [part for line in value.splitlines() for part in line.split(",")]
    if not isinstance(value, list):
        raise RuleError("keywords", _("Give a list of keywords."))
    keywords: dict[str, None] = {}  # a dict keeps the order and finds repeats at once
    for item in value:
        if not isinstance(item, str):
            raise RuleError("keywords", _("Each keyword must be text."))
        item = item.strip()
        if not item:
            continue
        if len(item) > MAX_KEYWORD_LENGTH:
            raise RuleError("keywords", _("A keyword is longer than %(n)d characters.") % {"n": MAX_KEYWORD_LENGTH})
        keywords[item] = None
        if len(keywords) > MAX_KEYWORDS:
            raise RuleError("keywords", _("At most %(n)d keywords per rule.") % {"n": MAX_KEYWORDS})
    if not keywords:
        raise RuleError("keywords", _("Give at least one keyword."))
    return list(keywords)


def _pattern_message(pattern: str, error: PatternError | None, detail: str) -> str:
    reason = error.reason if error else ""
    if reason == "lookaround" or "invalid perl operator" in detail:
        return _(
            "Lookahead and lookbehind are not supported (patterns run on RE2, which never backtracks). "
            "Rewrite the pattern without them."
        )
    if reason == "backreference" or re.search(r"\\[1-9]", pattern):
        return _("Back-references such as \\1 are not supported (patterns run on RE2). Remove them.")
    if reason == "possessive":
        return _("Possessive repeats (a*+) and atomic groups are not supported (patterns run on RE2). Remove them.")
    if "pattern too large" in detail or "invalid repetition size" in detail or "bad repetition" in detail:
        return _("The pattern is too large to run safely (%(detail)s); use fewer or smaller repetitions.") % {
            "detail": detail
        }
    return _("Not a valid regular expression: %(detail)s") % {"detail": detail}


def _re2_detail(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else str(exc)
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def compile_pattern(pattern: str, *, case_sensitive: bool) -> re2.Pattern:  # type: ignore[name-defined]
    """Compile with RE2 as RE2 reads it, translating its refusals into messages a user can act on."""
    try:
        return re2.compile(pattern, re2_options(case_sensitive=case_sensitive))
    except re2.error as exc:
        raise RuleError("pattern", _pattern_message(pattern, None, _re2_detail(exc))) from None


def folding(params: dict[str, Any]) -> bool:
    """Width folding is on unless a rule turned it off: rules saved before the option existed
    fold too (full-width ＲＥＦＵＮＤ is the keyword refund to every reader of the rule)."""
    return bool(params.get("fold_width", True))


@lru_cache(maxsize=512)
def regex_translation(pattern: str, *, case_sensitive: bool, fold_width: bool) -> Translation:
    """The pattern with Python re's meaning on RE2, or a RuleError naming what RE2 cannot do.
    Kept per process (a refusal is not): every chunk of every run asks again."""
    try:
        translation = pyregex.translate(pattern, ignorecase=not case_sensitive, folding=fold_width)
    except PatternError as exc:
        if exc.reason != "syntax":
            raise RuleError("pattern", _pattern_message(pattern, exc, exc.detail)) from None
        # Syntax Python's re lacks but RE2 has (\p{Han}, \pL): RE2's own meaning, as before.
        compile_pattern(pattern, case_sensitive=case_sensitive)
        translation = Translation(("" if case_sensitive else "(?i)") + pattern, None, False)
    try:
        re2.compile(translation.re2, re2_options())
    except re2.error as exc:
        raise RuleError("pattern", _pattern_message(pattern, None, _re2_detail(exc))) from None
    return translation


def text_translations(params: dict[str, Any]) -> tuple[Translation, ...]:
    """What RE2 (and, to confirm, the regex package) search for a keyword or regex rule, or a
    metadata rule that searches its field with keywords or a pattern."""
    fold_width, case_sensitive = folding(params), params["case_sensitive"]
    if "keywords" in params:
        return pyregex.keywords(
            tuple(params["keywords"]),
            any_of=params["mode"] != "all",
            ignorecase=not case_sensitive,
            folding=fold_width,
            whole_word=params["whole_word"],
        )
    return (regex_translation(params["pattern"], case_sensitive=case_sensitive, fold_width=fold_width),)


def _clean_keywords(params: dict[str, Any]) -> dict[str, Any]:
    mode = params.get("mode", "any") or "any"
    if mode not in ("any", "all"):
        raise RuleError("mode", _("Choose any or all."))
    return {
        "keywords": _keywords(params.get("keywords")),
        "mode": mode,
        "whole_word": _bool(params, "whole_word", True),
        "case_sensitive": _bool(params, "case_sensitive", False),
        "fold_width": _bool(params, "fold_width", True),
    }


def _clean_regex(params: dict[str, Any]) -> dict[str, Any]:
    pattern = params.get("pattern")
    if not isinstance(pattern, str) or not pattern:
        raise RuleError("pattern", _("Give a regular expression."))
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RuleError("pattern", _("At most %(n)d characters.") % {"n": MAX_PATTERN_LENGTH})
    case_sensitive = _bool(params, "case_sensitive", False)
    fold_width = _bool(params, "fold_width", True)
    regex_translation(pattern, case_sensitive=case_sensitive, fold_width=fold_width)
    return {"pattern": pattern, "case_sensitive": case_sensitive, "fold_width": fold_width}


def _clean_length(params: dict[str, Any]) -> dict[str, Any]:
    unit = params.get("unit", "words") or "words"
    if unit not in ("chars", "words"):
        raise RuleError("unit", _("Choose chars or words."))
    low, high = _int_or_none(params, "min"), _int_or_none(params, "max")
    if low is None and high is None:
        raise RuleError("min", _("Give a minimum, a maximum or both."))
    if low is not None and high is not None and low > high:
        raise RuleError("max", _("The maximum is below the minimum."))
    return {"unit": unit, "min": low, "max": high}


def _metadata_value(op: str, value: Any) -> Any:
    """The value a metadata test compares with: a number, a list of texts, None or a text, by `op`."""
    if op in ("gt", "lt"):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise RuleError("value", _("Comparing needs a number.")) from None
    if op == "in":
        _size_check(value, "value")
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not value:
            raise RuleError("value", _("Give a list of values."))
        value = [str(item) for item in value]
        if len(value) > MAX_KEYWORDS or any(len(item) > MAX_KEYWORD_LENGTH for item in value):
            raise RuleError(
                "value",
                _("Give at most %(count)d values of at most %(n)d characters each.")
                % {"count": MAX_KEYWORDS, "n": MAX_KEYWORD_LENGTH},
            )
        return value
    if op in ("exists", "missing", "keywords", "regex"):
        return None
    if value is None or (isinstance(value, (list, dict))):
        raise RuleError("value", _("Give a value to compare with."))
    value = value if isinstance(value, str) else str(value)
    if len(value) > MAX_PATTERN_LENGTH:
        raise RuleError("value", _("At most %(n)d characters.") % {"n": MAX_PATTERN_LENGTH})
    return value


def _clean_metadata(params: dict[str, Any]) -> dict[str, Any]:
    key = params.get("key")
    if not isinstance(key, str) or not key.strip():
        raise RuleError("key", _("Give the metadata field to test."))
    op = params.get("op", "equals") or "equals"
    if op not in METADATA_OPS:
        raise RuleError("op", _("Choose one of %(ops)s.") % {"ops": ", ".join(METADATA_OPS)})
    if len(key) > MAX_KEYWORD_LENGTH:
        raise RuleError("key", _("At most %(n)d characters.") % {"n": MAX_KEYWORD_LENGTH})
    cleaned = {"key": key.strip(), "op": op, "value": _metadata_value(op, params.get("value"))}
    # A field searched like a text: the same parameters and the same matching code.
    if op == "keywords":
        cleaned.update(_clean_keywords(params))
    elif op == "regex":
        cleaned.update(_clean_regex(params))
    return cleaned


def _rule_ids(value: Any) -> list[int]:
    _size_check(value, "rules")
    if isinstance(value, str):
        value = [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    if isinstance(value, (int, str)):
        value = [value]
    if not isinstance(value, list):
        raise RuleError("rules", _("Give the rules to combine."))
    ids: dict[int, None] = {}
    for item in value:
        try:
            ids[int(item)] = None
        except (TypeError, ValueError):
            raise RuleError("rules", _("Name each rule by its number (id).")) from None
    if len(ids) > MAX_COMBINED:
        raise RuleError("rules", _("At most %(n)d rules per combination.") % {"n": MAX_COMBINED})
    return list(ids)


def _clean_combine(params: dict[str, Any]) -> dict[str, Any]:
    op = params.get("op", "and") or "and"
    if op not in COMBINE_OPS:
        raise RuleError("op", _("Choose and, or or not."))
    ids = _rule_ids(params.get("rules"))
    if op == "not" and len(ids) != 1:
        raise RuleError("rules", _('"not" takes exactly one rule.'))
    if op != "not" and len(ids) < 2:
        raise RuleError("rules", _('"and" and "or" take at least two rules.'))
    return {"op": op, "rules": ids}


def combine_check(key: Any, params: dict[str, Any], rules: dict[Any, tuple[str, dict[str, Any]]]) -> None:
    """Refuse a combination that names a rule the project does not have, or that reaches
    itself through other combinations. ``rules`` maps the project's rule ids to (kind, params)
    as saved; ``key`` is the rule being checked (None for a new one)."""
    graph = {k: list(p.get("rules", ())) for k, (kind, p) in rules.items() if kind == COMBINE}
    graph[key] = list(params["rules"])
    for ref in params["rules"]:
        if ref not in rules or ref == key:
            if ref == key:
                raise RuleError("rules", _("A rule cannot combine itself."))
            raise RuleError("rules", _("There is no rule %(id)s in this project.") % {"id": ref})
    path: list[Any] = []
    done: set[Any] = set()

    def visit(node: Any) -> None:
        if node in done:
            return
        if node in path:
            names = " → ".join(str(n) for n in [*path[path.index(node) :], node])
            raise RuleError("rules", _("These combinations form a cycle: %(path)s.") % {"path": names})
        path.append(node)
        for ref in graph.get(node, ()):
            visit(ref)
        path.pop()
        done.add(node)

    visit(key)


def _clean_similarity(params: dict[str, Any]) -> dict[str, Any]:
    try:
        threshold = float(params.get("threshold", 0.8))
    except (TypeError, ValueError):
        raise RuleError("threshold", _("Must be a number between 0 and 1.")) from None
    if not 0.0 < threshold <= 1.0:
        raise RuleError("threshold", _("Must be a number between 0 and 1."))
    return {"threshold": threshold}


def _clean_zero_shot(params: dict[str, Any]) -> dict[str, Any]:
    instruction = params.get("instruction", "") or ""
    if not isinstance(instruction, str):
        raise RuleError("instruction", _("Must be text."))
    if len(instruction) > MAX_INSTRUCTION_LENGTH:
        raise RuleError("instruction", _("At most %(n)d characters.") % {"n": MAX_INSTRUCTION_LENGTH})
    cleaned: dict[str, Any] = {"instruction": instruction.strip()}
    # Which model answers: a generation job's backend choice, checked against the project by
    # the service (services.rule_clean). None or empty: the embedded model.
    backend = params.get("backend")
    if backend in (None, "", {}):
        return cleaned
    if not isinstance(backend, dict):
        raise RuleError(
            "backend",
            _('Choose one of the project\'s connections: {"connection": id}, or {"kind": "tuned", "run": id}.'),
        )
    return cleaned | {"backend": dict(backend)}


_CLEANERS = {
    KEYWORDS: _clean_keywords,
    REGEX: _clean_regex,
    LENGTH: _clean_length,
    METADATA: _clean_metadata,
    SIMILARITY: _clean_similarity,
    ZERO_SHOT: _clean_zero_shot,
    COMBINE: _clean_combine,
}


def clean_params(kind: str, params: Any) -> dict[str, Any]:
    """The checked parameters of a rule of this kind (unknown fields are dropped)."""
    if kind not in KINDS:
        raise RuleError(
            "kind",
            _("Unknown rule kind %(kind)s; choose one of %(kinds)s.") % {"kind": repr(kind), "kinds": ", ".join(KINDS)},
        )
    if not isinstance(params, dict):
        raise RuleError("params", _("Parameters must be an object."))
    return _CLEANERS[kind](params)


def clean_target(kind: str, target: Any) -> str:
    target = target or USER
    if target not in TARGETS:
        raise RuleError("target", _("Choose user, assistant or both."))
    return target
