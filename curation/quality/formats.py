"""Format consistency: does every example have the shape the model is meant to learn?

Fine-tuning copies form faithfully, flaws included. A handful of answers with a trailing
comma, a truncated JSON object, prose around a SQL query or a stray "Sure!" teaches the model
to produce them too, and a conversation with two user turns in a row or a different system
prompt teaches it a context it will never see. These checks find such examples before training,
one example at a time, and say which message is wrong and why.

Plain Python: messages in OpenAI chat shape in, short translated findings out (an empty list
means the example is fine). A service runs them over a project and stores what they find.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import sqlparse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from jsonschema.validators import validator_for
from referencing.exceptions import Unresolvable

from text.sql_scan import unclosed

Conversation = list[dict[str, Any]]

FORMATS = ("json", "sql")
ROLES = ("system", "user", "assistant")
# Enough to show what is wrong without burying the rest of the list.
MAX_SCHEMA_ERRORS = 3

# A whole answer inside one Markdown code fence, which chat models add on their own. The
# fence costs a few tokens but the content inside is what was asked for, so it is tolerated.
_FENCE = re.compile(r"\A```[\w+-]*[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL)
# Real statements that sqlparse's `get_type()` calls UNKNOWN.
_OTHER_SQL_STATEMENTS = frozenset(
    {"ANALYZE", "BEGIN", "DESC", "DESCRIBE", "EXPLAIN", "GRANT", "PRAGMA", "REVOKE", "SET", "SHOW", "USE", "VACUUM"}
)


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else ""


def _unfenced(text: str) -> str:
    text = text.strip()
    match = _FENCE.match(text)
    if match and "```" not in match["body"]:
        return match["body"].strip()
    return text


def check_structured(
    messages: Conversation, *, format: str = "json", schema: dict[str, Any] | None = None
) -> list[str]:
    """Findings about each assistant answer that is not valid `format` (or does not fit `schema`).

    Answers are numbered from 1 among the assistant messages. A whole answer inside one
    Markdown code fence is checked without the fence. Check the schema itself once with
    `check_schema` first: an invalid one can make jsonschema raise here (a reference that does
    not resolve is reported as a finding instead).
    """
    if format not in FORMATS:
        raise ValueError(
            _("Unknown format %(format)r; use one of: %(formats)s.") % {"format": format, "formats": ", ".join(FORMATS)}
        )
    findings: list[str] = []
    answers = [message for message in messages if message.get("role") == "assistant"]
    for number, message in enumerate(answers, start=1):
        text = _unfenced(_text(message))
        if not text:
            findings.append(_("answer %(number)d is empty") % {"number": number})
        elif format == "json":
            findings.extend(_check_json(number, text, schema))
        else:
            findings.extend(_check_sql(number, text))
    return findings


def _reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which other JSON parsers reject.
    raise ValueError(name)


def _check_json(number: int, text: str, schema: dict[str, Any] | None) -> list[str]:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        # Cut off by a length limit: the text ends inside a string or where more was expected.
        if error.pos >= len(text) or error.msg.startswith("Unterminated string"):
            return [_("answer %(number)d is cut off: the JSON ends before it is complete") % {"number": number}]
        if error.msg == "Extra data":
            return [
                _("answer %(number)d has text after the JSON (line %(line)d, column %(column)d)")
                % {"number": number, "line": error.lineno, "column": error.colno}
            ]
        return [
            _("answer %(number)d is not valid JSON: %(error)s (line %(line)d, column %(column)d)")
            % {"number": number, "error": error.msg, "line": error.lineno, "column": error.colno}
        ]
    except ValueError as error:
        return [_("answer %(number)d is not valid JSON: %(value)s is not allowed") % {"number": number, "value": error}]
    if schema is None:
        return []
    validator_class = validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    try:
        errors = sorted(validator.iter_errors(value), key=_path_order)
    except Unresolvable as error:
        # Found only when an answer reaches the reference; `check_schema` finds most beforehand.
        return [_("answer %(number)d: the schema's %(error)s") % {"number": number, "error": _unresolvable(error)}]
    except RecursionError:
        return [_("answer %(number)d: the schema refers to itself without end") % {"number": number}]
    findings = [
        _("answer %(number)d: %(path)s: %(error)s")
        % {"number": number, "path": error.json_path, "error": error.message}
        for error in errors[:MAX_SCHEMA_ERRORS]
    ]
    if len(errors) > MAX_SCHEMA_ERRORS:
        more = len(errors) - MAX_SCHEMA_ERRORS
        findings.append(
            ngettext(
                "answer %(number)d: %(count)d more schema error",
                "answer %(number)d: %(count)d more schema errors",
                more,
            )
            % {"number": number, "count": more}
        )
    return findings


def _path_order(error: Any) -> list[tuple[bool, Any]]:
    # Document order; the flag keeps an array index from being compared with a key.
    return [(isinstance(part, str), part) for part in error.absolute_path]


def _check_sql(number: int, text: str) -> list[str]:
    statements = [statement for statement in sqlparse.parse(text) if str(statement).strip(" \t\r\n;")]
    if not statements:
        return [_("answer %(number)d holds no SQL statement") % {"number": number}]
    for statement in statements:
        first = statement.token_first(skip_cm=True)
        keyword = first.normalized.upper() if first is not None else ""
        if statement.get_type() == "UNKNOWN" and keyword not in _OTHER_SQL_STATEMENTS:
            start = " ".join(str(statement).split())[:40]
            return [_("answer %(number)d is not SQL: it starts with “%(start)s”") % {"number": number, "start": start}]
    problem = _unbalanced(text)
    if problem:
        return [_("answer %(number)d: %(problem)s") % {"number": number, "problem": problem}]
    return []


def _unbalanced(sql: str) -> str:
    """What is left open in `sql`, in words; "" when all is closed."""
    found = unclosed(sql)
    if found is None:
        return ""
    if found.kind == "quote":
        return _("a %(quote)s quote is never closed") % {"quote": found.detail}
    if found.kind == "comment":
        return _("a /* comment is never closed")
    if found.kind == "extra_close":
        return _("a ) closes a parenthesis that was never opened")
    return ngettext("%(count)d parenthesis is never closed", "%(count)d parentheses are never closed", found.detail) % {
        "count": found.detail
    }


def check_schema(schema: Any) -> list[str]:
    """Findings about the project's JSON schema itself; an empty list means it is a valid schema."""
    if not isinstance(schema, dict | bool):
        return [_("The schema must be a JSON object, not %(type)s.") % {"type": type(schema).__name__}]
    validator_class = validator_for(schema)
    meta_validator = validator_class(validator_class.META_SCHEMA)
    errors = sorted(meta_validator.iter_errors(schema), key=_path_order)
    findings = [
        _("The schema is not valid at %(path)s: %(error)s") % {"path": error.json_path, "error": error.message}
        for error in errors[:MAX_SCHEMA_ERRORS]
    ]
    return findings or _broken_references(schema)


def _broken_references(schema: Any) -> list[str]:
    """A finding for each `$ref` that points nowhere in the schema or outside it.

    Nothing is fetched over the network, so a reference to another document never resolves;
    a valid schema that holds one fails only when an answer reaches it.
    """
    findings: list[str] = []
    stack: list[Any] = [schema]
    while stack and len(findings) < MAX_SCHEMA_ERRORS:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
            continue
        if not isinstance(node, dict):
            continue
        stack.extend(reversed(list(node.values())))
        reference = node.get("$ref")
        if not isinstance(reference, str) or "$id" in str(schema):
            # With $id, references resolve against other base URIs; jsonschema judges those while validating.
            continue
        if not reference.startswith("#"):
            findings.append(
                _(
                    "The schema refers to %(ref)s, which is never downloaded; copy that definition into "
                    "the schema's $defs and refer to it as #/$defs/NAME."
                )
                % {"ref": reference}
            )
        elif reference.startswith("#/") and not _pointer_exists(schema, reference[2:]):
            findings.append(_("The schema refers to %(ref)s, which is not in the schema.") % {"ref": reference})
    return findings


def _pointer_exists(document: Any, pointer: str) -> bool:
    for part in pointer.split("/"):
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return False
    return True


def _unresolvable(error: Unresolvable) -> str:
    return _("reference %(ref)s cannot be resolved") % {"ref": getattr(error, "ref", str(error))}


def _system_prompt(messages: Conversation) -> str | None:
    if messages and messages[0].get("role") == "system":
        return _text(messages[0])
    return None


def check_chat(messages: Conversation, *, expected_system: str | None = None) -> list[str]:
    """Findings about the shape of a conversation; an empty list means it is fine.

    The shape a chat model is trained on: at most one system message, first; then user and
    assistant taking turns, starting with the user and ending with the assistant's answer.
    With `expected_system` (the project's system prompt), an example whose system prompt
    differs is reported too.
    """
    if not messages:
        return [_("the conversation has no messages")]
    findings: list[str] = []
    turns: list[tuple[int, str]] = []
    for number, message in enumerate(messages, start=1):
        role = message.get("role")
        if role not in ROLES:
            findings.append(
                _("message %(number)d has the unknown role %(role)r; use system, user or assistant")
                % {"number": number, "role": role}
            )
            continue
        if not _text(message).strip():
            findings.append(_("message %(number)d (%(role)s) is empty") % {"number": number, "role": role})
        if role == "system":
            if number > 1:
                findings.append(
                    _("message %(number)d is a system message; only the first message may be one") % {"number": number}
                )
            continue
        turns.append((number, role))
    if turns:
        first_number, first_role = turns[0]
        if first_role != "user":
            findings.append(
                _("message %(number)d is the assistant's, but the conversation must start with the user's")
                % {"number": first_number}
            )
        for (_number, previous), (number, role) in zip(turns, turns[1:], strict=False):
            if role == previous:
                findings.append(
                    _("message %(number)d follows another %(role)s message; user and assistant must take turns")
                    % {"number": number, "role": role}
                )
        if turns[-1][1] != "assistant":
            findings.append(_("the conversation ends with the user's message; it must end with the assistant's answer"))
    else:
        findings.append(_("the conversation has no user or assistant messages"))
    if expected_system is not None:
        system = _system_prompt(messages)
        if system is None:
            if expected_system.strip():
                findings.append(_("the conversation has no system prompt, but the project has one"))
        elif _normalised(system) != _normalised(expected_system):
            findings.append(_("the system prompt differs from the project's"))
    return findings


def _normalised(prompt: str) -> str:
    return prompt.replace("\r\n", "\n").strip()


def usual_system_prompt(conversations: Iterable[Conversation]) -> str | None:
    """The most common system prompt among the conversations that have one; None when none has.

    For projects without a configured system prompt: the odd ones out are then the examples
    to look at. Ties go to the prompt seen first.
    """
    prompts = Counter(
        _normalised(prompt) for conversation in conversations if (prompt := _system_prompt(conversation)) is not None
    )
    if not prompts:
        return None
    return prompts.most_common(1)[0][0]
