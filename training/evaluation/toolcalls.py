"""Tool-call metrics: did a model call the right function with the right arguments, valid against
the function's schema, and call only when it should. Plain Python (no Django).

A reference is the evaluated assistant turn of the canonical conversation (docs/data-model.md):
its `tool_calls`, each {"id", "type": "function", "function": {"name", "arguments": JSON text}}.
A model's answer is read for calls from the structured `tool_calls` a backend returns (a message
dict), else from its text: every `<tool_call>{…}</tool_call>` (Hermes and Qwen write these; an
unclosed last one, cut by the token limit, counts too), else every bare JSON object
{"name": …, "arguments": …} in it (also "parameters" for the arguments, as Llama writes, and
OpenAI's {"type": "function", "function": {…}} wrapper), or a JSON list of them.

Per sample and system (`score_sample`), and over an evaluation (`aggregate`):
- function: the functions called are the reference's (the same names, as many times each);
- arguments_exact: that, and each call's arguments equal its reference call's (as JSON values:
  key order ignored, 1 equal to 1.0, true not equal to 1);
- argument keys: over the keys of each reference call and of the call matched to it, the share
  with the same value in both (a key missing or extra is wrong; an unmatched reference call has
  all its keys wrong);
- valid JSON: the share of calls made whose arguments are one JSON object;
- schema-valid: the share of calls made, in examples that have `tools`, that name one of them
  and whose arguments fit its `parameters` schema (jsonschema, the schema's own draft);
- call precision and recall of "makes a call": of the answers with a call, the share whose
  reference has one; of the references with a call, the share answered with one.
Calls are matched to reference calls by name, in order, an exact match first.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from training.evaluation import metrics

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
RATES = (
    "function",
    "arguments_exact",
    "argument_keys",
    "valid_json",
    "schema_valid",
    "call_precision",
    "call_recall",
)


@dataclass
class Call:
    name: str | None  # None when not even the name could be read
    arguments: Any  # the parsed arguments: a dict when valid_json, else None
    valid_json: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments, "valid_json": self.valid_json}


def _arguments(value: Any) -> tuple[Any, bool]:
    """Arguments as given (a JSON object, or JSON text of one; absent is no argument at all)."""
    if value is None:
        return {}, True
    if isinstance(value, str):
        ok, value = metrics.parse_json(value)
        if not ok:
            return None, False
    return (value, True) if isinstance(value, dict) else (None, False)


def _call(value: Any) -> Call | None:
    """A call from one parsed JSON value ({"name", "arguments"}, or OpenAI's {"function": {…}})."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return None
    arguments, valid = _arguments(value["arguments"] if "arguments" in value else value.get("parameters"))
    return Call(name, arguments, valid)


def reference_calls(message: dict[str, Any] | None) -> list[Call]:
    """The calls of a canonical assistant message (none for a message without `tool_calls`)."""
    calls = []
    for entry in (message or {}).get("tool_calls") or []:
        call = _call(entry) if isinstance(entry, dict) else None
        if call is not None:
            calls.append(call)
    return calls


def _tagged(text: str) -> list[Call]:
    calls = []
    for match in _TAGGED.finditer(text):
        body = match.group(1).strip()
        ok, value = metrics.parse_json(body)
        call = _call(value) if ok else None
        if call is None:
            name = _NAME.search(body)
            call = Call(json.loads(f'"{name.group(1)}"') if name else None, None, False)
        calls.append(call)
    return calls


def _looks_like_call(value: Any) -> bool:
    """A bare JSON object that is a call, not some other JSON answer that has a "name"."""
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("function"), dict):
        return True
    return "name" in value and ("arguments" in value or "parameters" in value)


def _bare(text: str) -> list[Call]:
    ok, value = metrics.parse_json(text)
    if ok and isinstance(value, list) and value and all(_looks_like_call(entry) for entry in value):
        return [call for entry in value if (call := _call(entry)) is not None]
    decoder = json.JSONDecoder()
    calls = []
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
            position = text.find("{", end)
        else:
            position = text.find("{", position + 1)
    return calls


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
    text = "" if answer is None else str(answer)
    if "<tool_call>" in text:
        return _tagged(text)
    return _bare(text)


def render_calls(message: dict[str, Any] | None) -> str:
    """The calls of a canonical assistant message as text, one `<tool_call>{…}</tool_call>` each
    (what the side-by-side page shows as the reference, and what the text metrics compare)."""
    lines = []
    for entry in (message or {}).get("tool_calls") or []:
        function = (entry.get("function") if isinstance(entry, dict) else None) or {}
        arguments = function.get("arguments")
        ok, value = metrics.parse_json(arguments) if isinstance(arguments, str) else (True, arguments)
        call = {"name": function.get("name"), "arguments": value if ok else arguments}
        lines.append("<tool_call>" + json.dumps(call, ensure_ascii=False) + "</tool_call>")
    return "\n".join(lines)


# --- Scoring ------------------------------------------------------------------------------------


def _schemas(tools: Sequence[dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Function name -> its parameters schema (an object of anything when it has none)."""
    found: dict[str, dict[str, Any]] = {}
    for tool in tools or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            found[function["name"]] = parameters if isinstance(parameters, dict) else {"type": "object"}
    return found


def _schema_valid(call: Call, schemas: dict[str, dict[str, Any]]) -> bool:
    if not call.valid_json or call.name not in schemas:
        return False
    try:
        validator = metrics._schema_validator(schemas[call.name])
    except ValueError:  # the tool's own schema is not valid: the call cannot fit it
        return False
    return metrics._fits(validator, call.arguments)


def _match(predicted: list[Call], reference: list[Call]) -> list[Call | None]:
    """For each reference call, the predicted call matched to it (same name; an exact one first)."""
    free = list(range(len(predicted)))
    matched: list[Call | None] = []
    for wanted in reference:
        same = [index for index in free if predicted[index].name == wanted.name]
        exact = [index for index in same if _same_arguments(predicted[index], wanted)]
        chosen = (exact or same or [None])[0]
        if chosen is not None:
            free.remove(chosen)
        matched.append(predicted[chosen] if chosen is not None else None)
    return matched


def _same_arguments(a: Call, b: Call) -> bool:
    return a.valid_json and b.valid_json and metrics._same_json(a.arguments, b.arguments)


def _keys(call: Call | None, wanted: Call) -> tuple[int, int]:
    """(keys with the same value in both, keys in either) of a reference call and its match."""
    expected = wanted.arguments if wanted.valid_json else {}
    got = call.arguments if call is not None and call.valid_json else {}
    keys = set(expected) | set(got)
    right = sum(1 for key in keys if key in expected and key in got and metrics._same_json(expected[key], got[key]))
    return right, len(keys)


def score_sample(
    predicted: list[Call], reference: list[Call], tools: Sequence[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One answer's tool-call scores against its reference turn (JSON-safe, summed by `aggregate`).

    {"should_call", "called", "function" and "arguments_exact" (None when no call was expected),
    "keys_right", "keys", "calls", "valid_json", "schema_valid", "schema_judged" (calls made in an
    example with tools), "names" (the functions called)}.
    """
    schemas = _schemas(tools)
    should = bool(reference)
    function = arguments_exact = None
    keys_right = keys = 0
    if should:
        function = Counter(call.name for call in predicted) == Counter(call.name for call in reference)
        matched = _match(predicted, reference)
        arguments_exact = function and all(
            call is not None and _same_arguments(call, wanted) for call, wanted in zip(matched, reference, strict=True)
        )
        for call, wanted in zip(matched, reference, strict=True):
            right, total = _keys(call, wanted)
            keys_right += right
            keys += total
    return {
        "should_call": should,
        "called": bool(predicted),
        "function": function,
        "arguments_exact": arguments_exact,
        "keys_right": keys_right,
        "keys": keys,
        "calls": len(predicted),
        "valid_json": sum(1 for call in predicted if call.valid_json),
        "schema_valid": sum(1 for call in predicted if _schema_valid(call, schemas)) if schemas else 0,
        "schema_judged": len(predicted) if schemas else 0,
        "names": [call.name for call in predicted],
    }


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def aggregate(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One system's tool-call metrics over its `score_sample` results, each a share (0..1) or None
    when nothing was there to judge: {"function", "arguments_exact", "argument_keys",
    "valid_json", "schema_valid", "call_precision", "call_recall", "examples" (with a reference
    call), "answers", "calls"}."""
    expected = [score for score in scores if score["should_call"]]
    called = [score for score in scores if score["called"]]
    both = sum(1 for score in called if score["should_call"])
    calls = sum(score["calls"] for score in scores)
    return {
        "function": _rate(sum(1 for score in expected if score["function"]), len(expected)),
        "arguments_exact": _rate(sum(1 for score in expected if score["arguments_exact"]), len(expected)),
        "argument_keys": _rate(sum(s["keys_right"] for s in expected), sum(s["keys"] for s in expected)),
        "valid_json": _rate(sum(score["valid_json"] for score in scores), calls),
        "schema_valid": _rate(sum(s["schema_valid"] for s in scores), sum(s["schema_judged"] for s in scores)),
        "call_precision": _rate(both, len(called)),
        "call_recall": _rate(both, len(expected)),
        "examples": len(expected),
        "answers": len(scores),
        "calls": calls,
    }
