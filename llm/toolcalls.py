"""Tool calls in what a model answers: read them, write them in the canonical shape, check them
against the tools the model was given. Plain Python (no Django); evaluation scores calls with
it (training/evaluation/toolcalls.py) and generation checks drafts with it.

A model's answer is read for calls from the structured `tool_calls` a backend returns (a message
dict), else from its text: every `<tool_call>{…}</tool_call>` (Hermes and Qwen write these; an
unclosed last one, cut by the token limit, counts too), else every bare JSON object
{"name": …, "arguments": …} in it (also "parameters" for the arguments, as Llama writes, and
OpenAI's {"type": "function", "function": {…}} wrapper), or a JSON list of them.

A canonical call (docs/data-model.md) is {"id", "type": "function", "function": {"name",
"arguments": JSON text}}; arguments a model wrote that are not one JSON object are kept as the
text it wrote, so a reviewer sees them, and `check_calls` says what is wrong with them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
_RAW_ARGUMENTS = re.compile(r'"(?:arguments|parameters)"\s*:\s*(.*?)\s*\}?\s*\Z', re.DOTALL)
_FENCE = re.compile(r"\A```[^\n`]*\n(?P<body>.*?)\n?```\Z", re.DOTALL)
_EMPTY_FENCE = re.compile(r"```[A-Za-z]*\s*```")

# What `check_calls` finds, one code per problem.
UNKNOWN = "tool_unknown"
ARGUMENTS_INVALID = "tool_arguments_invalid"
ARGUMENTS_SCHEMA = "tool_arguments_schema"
# The detail of ARGUMENTS_INVALID: why the arguments are not one JSON object.
NOT_JSON, NOT_OBJECT = "not_json", "not_object"


@dataclass
class Call:
    name: str | None  # None when not even the name could be read
    arguments: Any  # the parsed arguments: a dict when valid_json, else None
    valid_json: bool
    # The arguments as the model wrote them, when they are not one JSON object (not compared).
    text: str = field(default="", compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "valid_json": self.valid_json}

    def arguments_text(self) -> str:
        """The arguments as canonical JSON text (what the model wrote, when that is not an object)."""
        if self.valid_json:
            return json.dumps(self.arguments, ensure_ascii=False)
        return self.text


def reject_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which other JSON parsers reject.
    raise ValueError(name)


def parse_json(text: str | None) -> tuple[bool, Any]:
    """(True, value) when the text is one valid JSON value (a Markdown fence around all of it is
    tolerated; NaN, Infinity and text after the value are not); else (False, None)."""
    body = (text or "").strip()
    match = _FENCE.match(body)
    if match and "```" not in match["body"]:
        body = match["body"].strip()
    if not body:
        return False, None
    try:
        return True, json.loads(body, parse_constant=reject_constant)
    except ValueError:  # json.JSONDecodeError is a ValueError
        return False, None


def _arguments(value: Any) -> tuple[Any, bool, str]:
    """Arguments as given (a JSON object, or JSON text of one; absent is no argument at all):
    (the object or None, whether it is one, the text as written when it is not)."""
    if value is None:
        return {}, True, ""
    written = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        ok, value = parse_json(value)
        if not ok:
            return None, False, written
    return (value, True, "") if isinstance(value, dict) else (None, False, written)


def _call(value: Any) -> Call | None:
    """A call from one parsed JSON value ({"name", "arguments"}, or OpenAI's {"function": {…}})."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments, valid, text = _arguments(value["arguments"] if "arguments" in value else value.get("parameters"))
    return Call(name, arguments, valid, text)


def reference_calls(message: dict[str, Any] | None) -> list[Call]:
    """The calls of a canonical assistant message (none for a message without `tool_calls`)."""
    calls = []
    for entry in (message or {}).get("tool_calls") or []:
        call = _call(entry) if isinstance(entry, dict) else None
        if call is not None:
            calls.append(call)
    return calls


def _tagged(text: str) -> tuple[list[Call], list[tuple[int, int]]]:
    calls, spans = [], []
    for match in _TAGGED.finditer(text):
        body = match.group(1).strip()
        ok, value = parse_json(body)
        call = _call(value) if ok else None
        if call is None:
            name = _NAME.search(body)
            raw = _RAW_ARGUMENTS.search(body)
            call = Call(json.loads(f'"{name.group(1)}"') if name else None, None, False, raw.group(1) if raw else body)
        calls.append(call)
        spans.append(match.span())
    return calls, spans


def _looks_like_call(value: Any) -> bool:
    """A bare JSON object that is a call, not some other JSON answer that has a "name"."""
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("function"), dict):
        return True
    return "name" in value and ("arguments" in value or "parameters" in value)


def _bare(text: str) -> tuple[list[Call], list[tuple[int, int]]]:
    ok, value = parse_json(text)
    if ok and isinstance(value, list) and value and all(_looks_like_call(entry) for entry in value):
        return [call for entry in value if (call := _call(entry)) is not None], [(0, len(text))]
    decoder = json.JSONDecoder()
    calls, spans = [], []
    position = text.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            position = text.find("{", position + 1)
            continue
        call = _call(value) if _looks_like_call(value) else None
        if call is not None:
            calls.append(call)
            spans.append((position, end))
            position = text.find("{", end)
        else:
            position = text.find("{", position + 1)
    return calls, spans


def _from_text(text: str) -> tuple[list[Call], list[tuple[int, int]]]:
    return _tagged(text) if "<tool_call>" in text else _bare(text)


def parse_calls(answer: str | dict[str, Any] | None) -> list[Call]:
    """The calls a model's answer makes: a backend's message dict with `tool_calls`, or text."""
    if isinstance(answer, dict):
        if answer.get("tool_calls"):
            calls = []
            for entry in answer["tool_calls"]:
                call = _call(entry)
                calls.append(call if call is not None else Call(None, None, False))
            return calls
        answer = answer.get("content")
    return _from_text("" if answer is None else str(answer))[0]


def canonical(calls: Sequence[Call]) -> list[dict[str, Any]]:
    """Calls in the canonical shape, with the ids `call_0`, `call_1`, … in order."""
    return [
        {
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": call.name or "", "arguments": call.arguments_text()},
        }
        for index, call in enumerate(calls)
    ]


def split_text(text: str) -> tuple[str, list[dict[str, Any]]]:
    """A model's text as an assistant turn: (the text without its calls, the canonical calls).
    Text without calls comes back as it is, with no calls."""
    calls, spans = _from_text(text)
    if not calls:
        return text, []
    kept, last = [], 0
    for start, end in spans:
        kept.append(text[last:start])
        last = end
    kept.append(text[last:])
    rest = _EMPTY_FENCE.sub("", "".join(kept))
    return "\n".join(line for line in rest.strip().splitlines() if line.strip()), canonical(calls)


# --- Schemas ------------------------------------------------------------------------------------


def schemas(tools: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Function name -> its parameters schema (an object of anything when it has none)."""
    found: dict[str, dict[str, Any]] = {}
    for tool in tools or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            found[function["name"]] = parameters if isinstance(parameters, dict) else {"type": "object"}
    return found


def schema_validator(schema: dict[str, Any]) -> Any:
    """A jsonschema validator of the schema's own draft; ValueError when the schema is not valid."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    validator_class = validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except SchemaError as error:
        raise ValueError(f"The JSON schema is not valid: {error.message}") from None
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def schema_problem(validator: Any, value: Any) -> str | None:
    """The first way `value` does not fit the validator's schema ("at $.city: 3 is not of type
    'string'"), or None when it fits."""
    from referencing.exceptions import Unresolvable

    try:
        # The first by path, so the same arguments always get the same message.
        errors = sorted(validator.iter_errors(value), key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path])
    except (Unresolvable, RecursionError) as failure:
        return f"the schema cannot be applied ({type(failure).__name__})"
    if not errors:
        return None
    return f"at {errors[0].json_path}: {errors[0].message}"


def fits_schema(call: Call, found: dict[str, dict[str, Any]]) -> bool:
    """Whether the call names one of the functions and its arguments fit that function's schema."""
    if not call.valid_json or call.name not in found:
        return False
    try:
        validator = schema_validator(found[call.name])
    except ValueError:  # the tool's own schema is not valid: the call cannot fit it
        return False
    return schema_problem(validator, call.arguments) is None


@dataclass(frozen=True)
class Problem:
    """What is wrong with one call: its code (UNKNOWN, ARGUMENTS_INVALID, ARGUMENTS_SCHEMA), the
    call's id and function name, and for the arguments what is wrong with them (NOT_JSON or
    NOT_OBJECT for ARGUMENTS_INVALID; jsonschema's message, in English, for ARGUMENTS_SCHEMA)."""

    code: str
    call: str
    name: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        found = {"code": self.code, "call": self.call, "name": self.name}
        return {**found, "detail": self.detail} if self.detail else found


def check_calls(calls: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None) -> list[Problem]:
    """What is wrong with canonical calls given these tools: a function that is not one of them,
    arguments that are not one JSON object, arguments that do not fit the function's parameters
    schema."""
    found = schemas(tools)
    problems = []
    for index, entry in enumerate(calls):
        function = (entry.get("function") if isinstance(entry, dict) else None) or {}
        call_id = str(entry.get("id") or f"call_{index}") if isinstance(entry, dict) else f"call_{index}"
        name = function.get("name") if isinstance(function.get("name"), str) else ""
        if name not in found:
            problems.append(Problem(UNKNOWN, call_id, name))
        raw = function.get("arguments")
        arguments, valid, _text = _arguments(raw)
        if not valid:
            parsed = parse_json(raw)[0] if isinstance(raw, str) else True
            problems.append(Problem(ARGUMENTS_INVALID, call_id, name, NOT_OBJECT if parsed else NOT_JSON))
            continue
        if name not in found:
            continue
        try:
            problem = schema_problem(schema_validator(found[name]), arguments)
        except ValueError as error:
            problem = str(error)
        if problem is not None:
            problems.append(Problem(ARGUMENTS_SCHEMA, call_id, name, problem))
    return problems
