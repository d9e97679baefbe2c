"""Tool-call metrics: did a model call the right function with the right arguments, valid against
the function's schema, and call only when it should. Plain Python (no Django).

A reference is the evaluated assistant turn of the canonical conversation (docs/data-model.md):
its `tool_calls`, each {"id", "type": "function", "function": {"name", "arguments": JSON text}}.
A model's answer is read for calls by `llm.toolcalls.parse_calls` (structured `tool_calls`, or
`<tool_call>` tags, bare JSON calls or a list of them in its text; generation reads drafts
with the same code).

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
from collections import Counter
from collections.abc import Sequence
from typing import Any

from llm.toolcalls import Call, fits_schema, parse_calls, reference_calls, schemas
from training.evaluation import metrics

__all__ = ["RATES", "Call", "aggregate", "parse_calls", "reference_calls", "render_calls", "score_sample"]

RATES = (
    "function",
    "arguments_exact",
    "argument_keys",
    "valid_json",
    "schema_valid",
    "call_precision",
    "call_recall",
)


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
    found = schemas(tools)
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
        "schema_valid": sum(1 for call in predicted if fits_schema(call, found)) if found else 0,
        "schema_judged": len(predicted) if found else 0,
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
