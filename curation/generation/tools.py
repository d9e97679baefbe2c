"""Tools in generation: which tools a job offers the model, the drafted turn that keeps the
calls the model made, and the checks of those calls (docs/synthetic.md).

A synthetic job offers the tools of the project's approved examples (one definition per
function name, the newest example's), taken when the job is created and kept in its
configuration, so that a resumed job offers the same ones. An augmentation job offers each
source example's own tools. The drafted example keeps the tools it was offered.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Max
from django.utils.translation import gettext as _

from curation.models import Example, Project
from llm import toolcalls
from llm.interface import Generation

# The functions one job may offer: a prompt past this would hold little else.
MAX_TOOLS = 64


def project_tools(project: Project) -> list[dict[str, Any]]:
    """The tools of the project's approved examples: one definition per function name (the one
    of the newest example that has it), in the order the newest examples list them."""
    found: dict[str, dict[str, Any]] = {}
    lists = (
        Example.objects.filter(project=project, status=Example.Status.APPROVED)
        .exclude(tools=[])
        .values("tools")
        .annotate(newest=Max("id"))
        .order_by("-newest")
    )
    for row in lists.iterator(chunk_size=500):
        for tool in row["tools"] or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            name = function.get("name") if isinstance(function, dict) else None
            if isinstance(name, str) and name and name not in found:
                found[name] = tool
        if len(found) >= MAX_TOOLS:
            break
    return list(found.values())[:MAX_TOOLS]


def answer_turn(text: str, generation: Generation | None) -> dict[str, Any]:
    """The assistant turn a draft holds: the model's text, and the calls it made (canonical,
    ids `call_0`, `call_1`, … in order)."""
    turn: dict[str, Any] = {"role": "assistant", "content": text}
    calls = (generation.tool_calls if generation is not None else None) or []
    if calls:
        turn["tool_calls"] = [
            {"id": f"call_{index}", "type": "function", "function": dict(call.get("function") or {})}
            for index, call in enumerate(calls)
        ]
    return turn


def tool_flags(message: dict[str, Any], tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The flags of the calls a drafted turn makes: a function that is not one of `tools`,
    arguments that are not a JSON object, arguments that do not fit the function's schema."""
    calls = message.get("tool_calls") or []
    return [problem.as_dict() for problem in toolcalls.check_calls(calls, tools)] if calls else []


def tool_flag_message(flag: dict[str, Any]) -> str | None:
    """A tool flag in words, or None for another flag."""
    code = flag.get("code")
    values = {"call": flag.get("call") or "?", "name": flag.get("name") or _("(no name)")}
    if code == toolcalls.UNKNOWN:
        return _("Call %(call)s uses the function “%(name)s”, which is not one of the example's tools.") % values
    if code == toolcalls.ARGUMENTS_INVALID:
        if flag.get("detail") == toolcalls.NOT_OBJECT:
            return _("The arguments of call %(call)s (%(name)s) are JSON but not an object {…}.") % values
        return _("The arguments of call %(call)s (%(name)s) are not valid JSON.") % values
    if code == toolcalls.ARGUMENTS_SCHEMA:
        return _("The arguments of call %(call)s (%(name)s) do not fit the function's parameters: %(detail)s") % {
            **values,
            "detail": flag.get("detail", ""),
        }
    return None
