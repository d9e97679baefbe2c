"""Fixtures for synthetic generation: a scripted backend (no model) and jobs run through it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from curation.generation.synthetic import synthetic_execute
from curation.generation.tasks import synthetic_start
from curation.generation.templates import template_save
from curation.models import Draft, GenerationJob, Project, PromptTemplate
from llm.interface import Generation

# The loopback chat-completions server and its helpers, for jobs on an OpenAI-compatible backend.
from tests.curation.test_openai_backend import _no_proxy, server, sleeps  # noqa: F401


class ScriptedBackend:
    """Answers by rule: a request-writing prompt gets "Question N about <topic>?", a critique
    prompt gets a critique and an improved answer, anything else "Answer K to: <question>".
    `replies` overrides by substring of the last message; `calls` (by substring too) makes the
    reply call tools, as a backend that returns structured calls does; `fail` raises on the next
    call. `tools_seen` records the tools each call was given (None when it was given none)."""

    name = "scripted"

    def __init__(self) -> None:
        self.calls: list[list[list[dict[str, str]]]] = []
        self.replies: dict[str, str] = {}
        self.truncate: set[str] = set()
        self.fail: Exception | None = None
        self.counter = 0
        self.tool_calls: dict[str, list[dict[str, Any]]] = {}
        self.call_text = ""  # the text beside the calls
        self.tools_seen: list[list[list[dict[str, Any]] | None] | None] = []

    def generate_detailed(
        self,
        conversations: list[list[dict[str, str]]],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        tools: list[list[dict[str, Any]] | None] | None = None,
    ) -> list[Generation]:
        if self.fail is not None:
            raise self.fail
        self.calls.append(conversations)
        self.tools_seen.append(tools)
        out = []
        for index, conversation in enumerate(conversations):
            last = conversation[-1]["content"]
            calls = next((made for key, made in self.tool_calls.items() if key in last), None)
            if calls is not None and tools and tools[index]:
                out.append(Generation(self.call_text, truncated=False, tool_calls=calls))
                continue
            text = next((reply for key, reply in self.replies.items() if key in last), None)
            if text is None:
                self.counter += 1
                if "Improved answer" in last:
                    text = f"Critique: too short.\nImproved answer: A better answer {self.counter}."
                elif "Topic:" in last:
                    topic = last.split("Topic:", 1)[1].splitlines()[0].strip()
                    text = f"Question {self.counter} about {topic or 'anything'}?"
                else:
                    text = f"Answer {self.counter} to: {last}"
            out.append(Generation(text, truncated=any(key in last for key in self.truncate)))
        return out

    def generate(self, conversations: list[list[dict[str, str]]], **options: Any) -> list[str]:
        return [g.text for g in self.generate_detailed(conversations, **options)]


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def template(project: Project, users) -> PromptTemplate:
    return template_save(
        project=project,
        user=users["reviewer"],
        name="support",
        text="Write a customer message.\nTopic: {topic}\nKind of task: {task_type}\n{examples}",
        few_shot=2,
    )


@pytest.fixture
def run_job(
    project: Project, users, template: PromptTemplate, backend: ScriptedBackend, django_capture_on_commit_callbacks
) -> Callable[..., GenerationJob]:
    """Start a synthetic job (the Huey task is not run) and execute it with the scripted backend."""

    def run(**options: Any) -> GenerationJob:
        settings = {"count": 2, "candidates": 1, "topics": ["refunds", "delivery"], "temperature": 0.7}
        settings.update(options)
        job = synthetic_start(project=project, user=users["reviewer"], template=template, **settings)
        return synthetic_execute(job=job, backend=backend)

    return run


@pytest.fixture
def drafts(run_job) -> Callable[..., list[Draft]]:
    """Run a job and return its drafts, oldest first."""

    def make(**options: Any) -> list[Draft]:
        job = run_job(**options)
        return list(Draft.objects.filter(job=job).select_related("example").order_by("id"))

    return make
