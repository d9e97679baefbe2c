"""Prompt templates: what a model is asked to write one synthetic user request.

A template is text with placeholders in braces. Only the names below are placeholders;
anything else in braces (a JSON example, say) is left as it is, but `{word}` that looks like a
placeholder and is not one is refused, since it is almost always a typo. Values are put in one
pass, so a value that holds braces (a passage of a document quoting `{topic}`) stays as it is.
`{document}` is a passage of one of the project's documents (curation/generation/grounding.py). Saving a changed
template makes a new version; jobs point at the version they used.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from curation.generation import ConfigError
from curation.models import Example, Project, PromptTemplate

PLACEHOLDERS = ("topic", "task_type", "examples", "label", "system_prompt", "guidelines", "document")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Kinds of task a job can cycle through for diversity; the key goes into the prompt in English
# words, the label is what the form shows.
TASK_TYPES: dict[str, Any] = {
    "question answering": gettext_lazy("Question answering"),
    "summarisation": gettext_lazy("Summarisation"),
    "code": gettext_lazy("Code"),
    "error handling": gettext_lazy("Error handling"),
    "customer support": gettext_lazy("Customer support"),
    "internal documents": gettext_lazy("Internal documents"),
}

DEFAULT_NAME = "default"
DEFAULT_TEXT = """Write one realistic message that a user could send to this assistant.
Topic: {topic}
Kind of task: {task_type}

Examples of messages this assistant handles:
{examples}

Write only the user's message, in the same language as the examples, without quotes or comments."""

MAX_TEXT = 20_000
MAX_FEW_SHOT = 10
MAX_EXAMPLE_CHARS = 1_500


def template_check(text: str) -> str:
    """The template text if it can be used; ConfigError("text", where and what) if not."""
    if not text.strip():
        raise ConfigError("text", _("The template is empty."))
    if len(text) > MAX_TEXT:
        raise ConfigError("text", _("The template is longer than %(n)s characters.") % {"n": f"{MAX_TEXT:,}"})
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _PLACEHOLDER.finditer(line):
            if match[1] not in PLACEHOLDERS:
                raise ConfigError(
                    "text",
                    _("Line %(line)d: {%(name)s} is not a placeholder; use %(known)s.")
                    % {"line": number, "name": match[1], "known": ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)},
                )
    return text


def uses(text: str, placeholder: str) -> bool:
    return any(match[1] == placeholder for match in _PLACEHOLDER.finditer(text))


def render(text: str, values: dict[str, str]) -> str:
    """The template with each known placeholder replaced (missing values become "")."""
    return _PLACEHOLDER.sub(lambda m: values.get(m[1], "") if m[1] in PLACEHOLDERS else m[0], text)


@transaction.atomic
def template_save(*, project: Project, user: Any, name: str, text: str, few_shot: int = 3) -> PromptTemplate:
    """Save `text` as the newest version of the template `name` (version 1 if it is new).
    Saving what the newest version already holds changes nothing and returns it."""
    name = name.strip()
    if not name:
        raise ConfigError("name", _("Give the template a name."))
    if len(name) > 100:
        raise ConfigError("name", _("The name is longer than 100 characters."))
    template_check(text)
    if not 0 <= few_shot <= MAX_FEW_SHOT:
        raise ConfigError("few_shot", _("Choose 0 to %(n)s few-shot examples.") % {"n": MAX_FEW_SHOT})
    latest = PromptTemplate.objects.filter(project=project, name=name).order_by("-version").first()
    if latest is not None and latest.text == text and latest.few_shot == few_shot:
        return latest
    version = (PromptTemplate.objects.filter(project=project, name=name).aggregate(v=Max("version"))["v"] or 0) + 1
    try:
        with transaction.atomic():
            return PromptTemplate.objects.create(
                project=project,
                name=name,
                version=version,
                text=text,
                few_shot=few_shot,
                created_by=user if getattr(user, "is_authenticated", False) else None,
            )
    except IntegrityError:
        raise ConfigError(
            "text", _("Someone else saved a new version of %(name)s just now; reload and try again.") % {"name": name}
        ) from None


def templates_current(project: Project) -> list[PromptTemplate]:
    """The newest version of each of the project's templates, by name."""
    newest: dict[str, PromptTemplate] = {}
    for template in PromptTemplate.objects.filter(project=project).order_by("name", "-version"):
        newest.setdefault(template.name, template)
    return list(newest.values())


def template_default(project: Project, user: Any = None) -> PromptTemplate:
    """The project's first template, made from DEFAULT_TEXT if it has none yet."""
    current = templates_current(project)
    if current:
        return current[0]
    return template_save(project=project, user=user, name=DEFAULT_NAME, text=DEFAULT_TEXT)


def few_shot_pool(project: Project, limit: int = 200) -> list[list[dict[str, Any]]]:
    """Approved examples' messages (without the system prompt) to draw few-shot examples from."""
    rows = Example.objects.filter(project=project, status=Example.Status.APPROVED).order_by("id")
    pool = []
    for messages in rows.values_list("messages", flat=True)[:limit]:
        turns = [m for m in messages if isinstance(m, dict) and m.get("role") != "system"]
        if turns:
            pool.append(turns)
    return pool


def few_shot_block(pool: Sequence[list[dict[str, Any]]], count: int, rng: random.Random) -> str:
    """`count` examples from the pool as "User: ... / Assistant: ..." blocks."""
    if not pool or count <= 0:
        return ""
    chosen = rng.sample(list(pool), min(count, len(pool)))
    blocks = []
    for turns in chosen:
        lines = []
        for message in turns:
            content = str(message.get("content") or "")
            if len(content) > MAX_EXAMPLE_CHARS:
                content = content[:MAX_EXAMPLE_CHARS] + " …"
            lines.append(f"{str(message.get('role', '')).capitalize()}: {content}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
