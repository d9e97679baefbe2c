"""The forms of the synthetic generation pages: a prompt template, and a generation job.

The forms collect what was typed and check only its shape (a number in range, a known task
type); `templates.template_save` and `tasks.synthetic_start` decide whether it can work
and name the field when it cannot. Field names match those services' ConfigError fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy

from curation.connections.services import choice_from_spec, spec_from_choice
from curation.generation.synthetic import MAX_CANDIDATES, MAX_PROMPTS
from curation.generation.templates import MAX_FEW_SHOT, PLACEHOLDERS, TASK_TYPES
from curation.models import GenerationJob, PromptTemplate

PLACEHOLDER_HELP: dict[str, Any] = {
    "topic": gettext_lazy("one of the job's topics, each prompt taking the next in turn"),
    "task_type": gettext_lazy("one of the job's task types, in turn, so that every topic meets every task type"),
    "examples": gettext_lazy(
        "as many approved examples of this project as “few-shot examples” says, picked at random, "
        "written as “User: … / Assistant: …”"
    ),
    "label": gettext_lazy("one of the project's labels, in turn; the draft gets that label"),
    "system_prompt": gettext_lazy("the project's system prompt"),
    "guidelines": gettext_lazy("the project's annotation guidelines"),
    "document": gettext_lazy(
        "a passage of about 1,200 characters from one of the project's documents, drawn at random (the seed "
        "draws the same ones again); each draft keeps the passage, and reviewers see it beside the draft"
    ),
}


def placeholder_help() -> list[tuple[str, Any]]:
    """Each placeholder as it is written in a template, with what it becomes."""
    return [("{" + name + "}", PLACEHOLDER_HELP.get(name, "")) for name in PLACEHOLDERS]


class TemplateForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("Saving under a new name starts a new template at version 1."),
    )
    text = forms.CharField(
        label=gettext_lazy("Template"),
        strip=False,
        widget=forms.Textarea(
            attrs={"rows": 14, "cols": 80, "spellcheck": "false", "style": "font-family: ui-monospace, monospace"}
        ),
        help_text=gettext_lazy(
            "What the model is asked, to write one user request. Braces that hold no single word, as in a "
            "JSON example, stay as written."
        ),
    )
    few_shot = forms.IntegerField(
        label=gettext_lazy("Few-shot examples"),
        min_value=0,
        max_value=MAX_FEW_SHOT,
        initial=3,
        help_text=gettext_lazy("How many approved examples fill {examples}."),
    )

    @staticmethod
    def initial_for(template: PromptTemplate | None, default_text: str) -> dict[str, Any]:
        if template is None:
            return {"name": "", "text": default_text, "few_shot": 3}
        return {"name": template.name, "text": template.text, "few_shot": template.few_shot}


class JobForm(forms.Form):
    template = forms.ChoiceField(
        label=gettext_lazy("Prompt template"),
        help_text=gettext_lazy("The newest version of each template; the job keeps the version it used."),
    )
    count = forms.IntegerField(
        label=gettext_lazy("Prompts"),
        min_value=1,
        max_value=MAX_PROMPTS,
        initial=10,
        help_text=gettext_lazy("How many user requests the model writes."),
    )
    candidates = forms.IntegerField(
        label=gettext_lazy("Candidates per prompt"),
        min_value=1,
        max_value=MAX_CANDIDATES,
        initial=1,
        help_text=gettext_lazy(
            "Answers written to each request. With more than one, reviewers rank them and the ranking "
            "yields preference pairs."
        ),
    )
    topics = forms.CharField(
        label=gettext_lazy("Topics"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=gettext_lazy("One per line. Each prompt takes the next topic in turn, so the drafts vary."),
    )
    task_types = forms.MultipleChoiceField(
        label=gettext_lazy("Task types"),
        required=False,
        choices=list(TASK_TYPES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Taken in turn like the topics; with none chosen, {task_type} stays empty."),
    )
    temperature = forms.FloatField(
        label=gettext_lazy("Temperature"),
        min_value=0.0,
        max_value=2.0,
        initial=0.7,
        widget=forms.NumberInput(attrs={"step": "0.1"}),
        help_text=gettext_lazy("Higher gives more varied text; 0 always gives the same answer."),
    )
    max_new_tokens = forms.IntegerField(
        label=gettext_lazy("Maximum tokens per answer"),
        min_value=16,
        max_value=4096,
        initial=256,
        help_text=gettext_lazy("An answer that reaches it is cut off and flagged as such."),
    )
    critique = forms.BooleanField(
        label=gettext_lazy("Critique and rewrite"),
        required=False,
        help_text=gettext_lazy(
            "The model critiques its own answer and rewrites it; reviewers see the first answer, the critique "
            "and the rewrite. It takes about twice as long."
        ),
    )
    seed = forms.IntegerField(
        label=gettext_lazy("Seed"),
        min_value=0,
        initial=0,
        help_text=gettext_lazy("Picks the few-shot examples; the same seed picks the same ones again."),
    )
    sources = forms.MultipleChoiceField(
        label=gettext_lazy("Documents from"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "For a template with {document}: the sources whose documents it draws from; all when none."
        ),
    )
    passage_context = forms.BooleanField(
        label=gettext_lazy("Answer from the passage"),
        required=False,
        initial=True,
        help_text=gettext_lazy(
            "For a template with {document}: the answer is written with the passage in its system message, and the "
            "example keeps it there, so the tuned model learns to answer from a passage it is given rather than "
            "to remember facts. Off: only the request sees the passage."
        ),
    )
    backend = forms.ChoiceField(
        label=gettext_lazy("Which model writes"),
        help_text=gettext_lazy(
            "A connection an admin set up for this project (or for every project), or the model tuned by one of "
            "this project's finished training runs."
        ),
    )

    def __init__(
        self,
        *args: Any,
        templates: list[PromptTemplate],
        backends: list[tuple[str, str]],
        sources: Sequence[tuple[int, str]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.templates = {str(t.pk): t for t in templates}
        self.fields["template"].choices = [(str(t.pk), f"{t.name} (v{t.version})") for t in templates]
        self.fields["backend"].choices = backends
        self.fields["sources"].choices = [(str(pk), name) for pk, name in sources]
        if not sources:  # the project has no documents to draw from
            del self.fields["sources"]
            del self.fields["passage_context"]

    def clean_template(self) -> PromptTemplate:
        return self.templates[self.cleaned_data["template"]]

    def clean_topics(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["topics"].splitlines() if line.strip()]

    def job_settings(self) -> dict[str, Any]:
        """The cleaned form as `synthetic_start` takes it."""
        d = self.cleaned_data
        return {
            "template": d["template"],
            "count": d["count"],
            "candidates": d["candidates"],
            "topics": d["topics"],
            "task_types": d["task_types"],
            "temperature": d["temperature"],
            "max_new_tokens": d["max_new_tokens"],
            "critique": d["critique"],
            "seed": d["seed"],
            "sources": [int(pk) for pk in d.get("sources") or []],
            "passage_context": d.get("passage_context", True),
            "backend": spec_from_choice(d["backend"]),
        }

    @staticmethod
    def initial_from(job: GenerationJob | None, templates: list[PromptTemplate]) -> dict[str, Any]:
        """The settings of the project's last synthetic job, with its template's newest version."""
        initial: dict[str, Any] = {"template": str(templates[0].pk)} if templates else {}
        if job is None:
            return initial
        cfg, backend = job.config or {}, (job.config or {}).get("backend") or {}
        if job.template is not None:
            newest = next((t for t in templates if t.name == job.template.name), None)
            if newest is not None:
                initial["template"] = str(newest.pk)
        for key in ("count", "candidates", "temperature", "max_new_tokens", "critique", "seed"):
            if key in cfg:
                initial[key] = cfg[key]
        initial["topics"] = "\n".join(cfg.get("topics") or [])
        initial["task_types"] = [t for t in cfg.get("task_types") or [] if t in TASK_TYPES]
        initial["sources"] = [str(pk) for pk in cfg.get("sources") or []]
        initial["passage_context"] = cfg.get("passage_context", True)
        if choice := choice_from_spec(backend):
            initial["backend"] = choice
        return initial
