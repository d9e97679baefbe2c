"""Synthetic generation jobs: a template asks the model for user requests, the model answers
each request (one or several candidates), optionally critiques and rewrites its answer, and
every answer becomes a draft (an example with status draft and a `Draft` row) for review.

A template with `{document}` grounds each prompt in one passage of the project's documents
(curation/generation/grounding.py); its drafts keep the passage and the document.

Drafts are written per prompt, all candidates of a prompt in one transaction, each with a key
unique within its job: a failed or cancelled job keeps what it finished, and a job run again
(after a crash or a resume) makes only the prompts it lacks.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.connections.backends import BackendChoiceError, backend_choose, backend_from_spec
from curation.core.services import content_hash, example_snapshot, search_text
from curation.generation import ConfigError
from curation.generation.checks import DraftChecker
from curation.generation.grounding import (
    CONTEXT_HEADER,
    PASSAGE_CHARS,
    PLACEHOLDER,
    Grounding,
    grounding_check,
    job_groundings,
    sources_clean,
)
from curation.generation.templates import TASK_TYPES, few_shot_block, few_shot_pool, render, uses
from curation.generation.tools import answer_turn, project_tools
from curation.models import Draft, Example, ExampleRevision, GenerationJob, Project, PromptTemplate
from llm.interface import Generation, GenerationBackend, GenerationError
from llm.local import generate_detailed

log = logging.getLogger(__name__)

MAX_PROMPTS = 1000
MAX_CANDIDATES = 5
MAX_TOPICS = 200
BATCH = 8

CRITIQUE = (
    "Here is a request and a draft answer.\n\n"
    "Request:\n{request}\n\n"
    "Draft answer:\n{answer}\n\n"
    "First say briefly what is wrong or missing in the draft answer. Then write a better answer. "
    "Use exactly this form:\n"
    "Critique: <what to improve>\n"
    "Improved answer: <the better answer>"
)
_IMPROVED = re.compile(r"improved answer\s*:\s*", re.IGNORECASE)
_CRITIQUE = re.compile(r"^\s*critique\s*:\s*", re.IGNORECASE)
_QUOTES = {'"': '"', "'": "'", "“": "”", "「": "」", "『": "』"}
_LEADS = ("user's message:", "user message:", "message:", "user:", "request:")


@dataclass
class DraftRow:
    """One draft to write: the example's content and its review record."""

    key: str
    group: str
    candidate: int
    messages: list[dict[str, Any]]
    target: int
    label_id: int | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    source: str = Example.Source.SYNTHETIC
    metadata: dict[str, Any] = field(default_factory=dict)
    request: str = ""
    original: str = ""
    first_answer: str = ""
    critique: str = ""
    flags: list[dict[str, Any]] = field(default_factory=list)
    document_id: int | None = None
    passage: str = ""


def write_drafts(job: GenerationJob, rows: list[DraftRow]) -> list[Example]:
    """Write the drafts of one prompt together, or none of them if the job already has them."""
    made: list[Example] = []
    try:
        with transaction.atomic():
            for row in rows:
                example = Example.objects.create(
                    project_id=job.project_id,
                    messages=row.messages,
                    tools=row.tools,
                    label_id=row.label_id,
                    source=row.source,
                    status=Example.Status.DRAFT,
                    split=Example.Split.UNASSIGNED,
                    metadata={**row.metadata, "backend": job.backend},
                    content_hash=content_hash(row.messages, row.tools),
                    search_text=search_text(row.messages),
                    generation_job=job,
                    generation_key=row.key,
                    created_by_id=job.created_by_id,
                )
                Draft.objects.create(
                    example=example,
                    project_id=job.project_id,
                    job=job,
                    template_id=job.template_id,
                    group=row.group,
                    candidate=row.candidate,
                    target=row.target,
                    request=row.request,
                    original=row.original,
                    first_answer=row.first_answer,
                    critique=row.critique,
                    document_id=row.document_id,
                    passage=row.passage,
                    flags=row.flags,
                )
                ExampleRevision.objects.create(
                    example=example,
                    project_id=job.project_id,
                    user_id=job.created_by_id,
                    action=ExampleRevision.Action.CREATE,
                    version=example.version,
                    before=None,
                    after=example_snapshot(example),
                )
                made.append(example)
    except IntegrityError:
        return []  # made by an earlier delivery of this job
    return made


# --- starting ----------------------------------------------------------------------------


def _clean_list(values: Any, field_name: str, limit: int) -> list[str]:
    if isinstance(values, str):
        values = values.splitlines()
    cleaned = [" ".join(str(v).split()) for v in values or []]
    cleaned = list(dict.fromkeys(v for v in cleaned if v))
    if len(cleaned) > limit:
        raise ConfigError(field_name, _("Give at most %(n)s entries.") % {"n": limit})
    if any(len(v) > 300 for v in cleaned):
        raise ConfigError(field_name, _("Each entry must be at most 300 characters."))
    return cleaned


@transaction.atomic
def synthetic_create(
    *,
    project: Project,
    user: Any,
    template: PromptTemplate,
    count: int,
    candidates: int = 1,
    topics: Any = (),
    task_types: Any = (),
    temperature: float = 0.7,
    max_new_tokens: int = 256,
    critique: bool = False,
    backend: dict[str, Any] | None = None,
    seed: int = 0,
    sources: Any = (),
    passage_context: bool = True,
) -> GenerationJob:
    """A synthetic job, queued (curation/generation/tasks.py enqueues it); ConfigError names the
    setting that cannot work."""
    if template.project_id != project.pk:
        raise ConfigError("template", _("That template belongs to another project."))
    if not 1 <= count <= MAX_PROMPTS:
        raise ConfigError("count", _("Choose 1 to %(n)s prompts.") % {"n": MAX_PROMPTS})
    if not 1 <= candidates <= MAX_CANDIDATES:
        raise ConfigError("candidates", _("Choose 1 to %(n)s candidates per prompt.") % {"n": MAX_CANDIDATES})
    if not 0.0 <= temperature <= 2.0:
        raise ConfigError("temperature", _("Temperature must be between 0 and 2."))
    if candidates > 1 and temperature == 0:
        raise ConfigError(
            "temperature", _("Several candidates for one prompt need a temperature above 0, or they come out the same.")
        )
    if not 16 <= max_new_tokens <= 4096:
        raise ConfigError("max_new_tokens", _("Maximum tokens must be between 16 and 4096."))
    try:  # per-job token budget and per-project cap on unfinished jobs (curation/core/limits.py)
        from curation.core.limits import LimitExceeded, generation_budget_check

        asks = candidates * (2 if critique else 1)  # a critique asks again for each candidate
        generation_budget_check(project=project, prompts=count, candidates=asks, max_new_tokens=max_new_tokens)
    except LimitExceeded as error:
        raise ConfigError(error.field, error.message) from None
    topics = _clean_list(topics, "topics", MAX_TOPICS)
    task_types = _clean_list(task_types, "task_types", len(TASK_TYPES) + MAX_TOPICS)
    sources = sources_clean(project, sources)
    grounding_check(project=project, template=template, sources=sources)
    try:
        spec, name = backend_choose(backend, project)
    except BackendChoiceError as error:
        raise ConfigError(f"backend_{error.field}", error.message) from None
    return GenerationJob.objects.create(
        project=project,
        kind=GenerationJob.Kind.SYNTHETIC,
        template=template,
        backend=name,
        config={
            "count": count,
            "candidates": candidates,
            "topics": topics,
            "task_types": task_types,
            "temperature": temperature,
            "max_new_tokens": max_new_tokens,
            "critique": bool(critique),
            "seed": int(seed),
            "backend": spec,
            # Offered to the model with each request it answers (curation/generation/tools.py).
            "tools": [] if project.kind == Project.Kind.CLASSIFICATION else project_tools(project),
            # {document}: the sources drawn from (all when empty) and the passages' size.
            # passage_context: the answer is written with the passage in its system message, and the
            # example keeps it there (retrieval-style: the model learns to answer from a passage).
            **(
                {"sources": sources, "passage_chars": PASSAGE_CHARS, "passage_context": bool(passage_context)}
                if uses(template.text, PLACEHOLDER)
                else {}
            ),
        },
        total=count,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


# --- running -----------------------------------------------------------------------------


def clean_request(text: str) -> str:
    """Small models announce the message or wrap it in quotes; take that off."""
    text = text.strip()
    for lead in _LEADS:
        if text.lower().startswith(lead):
            text = text[len(lead) :].strip()
            break
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def parse_critique(text: str) -> tuple[str, str] | None:
    """(critique, improved answer) from the critique step's reply, or None if it has no answer."""
    parts = _IMPROVED.split(text, maxsplit=1)
    if len(parts) != 2 or not parts[1].strip():
        return None
    return _CRITIQUE.sub("", parts[0]).strip(), parts[1].strip()


@dataclass
class _Unit:
    number: int
    request: str
    label_id: int | None
    topic: str
    task_type: str
    grounding: Grounding | None = None
    prompts: list[str] = field(default_factory=list)
    prompt_generations: list[Generation] = field(default_factory=list)


def _unit_values(job: GenerationJob, number: int, labels: list[tuple[int, str]]) -> tuple[str, str, int | None, str]:
    cfg = job.config
    topics, task_types = cfg.get("topics") or [""], cfg.get("task_types") or [""]
    # Every topic with every task type before any pair repeats.
    topic = topics[number % len(topics)]
    task_type = task_types[(number // len(topics)) % len(task_types)]
    label_id, label = (None, "")
    if labels and job.template and uses(job.template.text, "label"):
        label_id, label = labels[number % len(labels)]
    return topic, task_type, label_id, label


def synthetic_execute(*, job: GenerationJob, backend: GenerationBackend | None = None) -> GenerationJob:
    if not GenerationJob.claim(job.pk, started_at=timezone.now()):
        return _reloaded(job)
    job = GenerationJob.objects.select_related("project", "template").get(pk=job.pk)
    project, cfg = job.project, job.config
    errors: list[dict[str, Any]] = list(job.errors)
    done = set(Draft.objects.filter(job=job).values_list("group", flat=True))
    classification = project.kind == Project.Kind.CLASSIFICATION
    try:
        backend = backend or backend_from_spec(cfg.get("backend"), project)
        checker = DraftChecker(project, job_id=job.pk)
        checker.load_own()
        pool = few_shot_pool(project)
        labels = list(project.labels.order_by("name").values_list("id", "name"))
        template = job.template
        groundings = job_groundings(job)
        for start in range(0, cfg["count"], BATCH):
            if GenerationJob.objects.filter(pk=job.pk, cancel_requested=True).exists():
                GenerationJob.objects.filter(pk=job.pk).update(
                    status=GenerationJob.Status.CANCELLED, finished_at=timezone.now(), errors=errors
                )
                return _reloaded(job)
            units = []
            for number in range(start, min(start + BATCH, cfg["count"])):
                if f"p{number}" in done:
                    continue
                topic, task_type, label_id, label = _unit_values(job, number, labels)
                rng = random.Random(f"{cfg.get('seed', 0)}:{number}")
                values = {
                    "topic": topic,
                    "task_type": task_type,
                    "label": label,
                    "examples": few_shot_block(pool, template.few_shot if template else 0, rng),
                    "system_prompt": project.system_prompt,
                    "guidelines": project.guidelines,
                }
                grounding = groundings[number] if groundings else None
                values["document"] = grounding.passage if grounding else ""
                units.append(
                    _Unit(
                        number, render(template.text if template else "", values), label_id, topic, task_type, grounding
                    )
                )
            if units:
                created = _run_units(job, units, backend, checker, errors, classification)
            else:
                created = 0
            GenerationJob.objects.filter(pk=job.pk).update(
                processed=min(start + BATCH, cfg["count"]), created_count=F("created_count") + created, errors=errors
            )
    except GenerationError as exc:
        _fail(job, str(exc), errors)
        return _reloaded(job)
    except ConfigError as exc:  # nothing (any more) to draw {document} from
        _fail(job, exc.message, errors)
        return _reloaded(job)
    except Exception as exc:
        log.exception("generation job %s failed", job.pk)
        _fail(job, f"{type(exc).__name__}: {exc}", errors)
        raise
    GenerationJob.objects.filter(pk=job.pk).update(
        status=GenerationJob.Status.DONE, processed=cfg["count"], finished_at=timezone.now(), errors=errors
    )
    return _reloaded(job)


def _run_units(
    job: GenerationJob,
    units: list[_Unit],
    backend: GenerationBackend,
    checker: DraftChecker,
    errors: list[dict[str, Any]],
    classification: bool,
) -> int:
    """One batch: the requests, then (for chat) the answers and critiques, then the drafts."""
    _ask_requests(job, units, backend, classification)
    project = job.project
    system = [{"role": "system", "content": project.system_prompt}] if project.system_prompt.strip() else []
    if classification:
        rows = _request_rows(units, system, checker, errors)
    else:
        rows = _answer_rows(job, units, system, backend, checker, errors)
    created = 0
    for _number, unit_rows in sorted(rows.items()):
        made = write_drafts(job, unit_rows)
        for example, row in zip(made, unit_rows, strict=False):
            checker.remember(example.pk, row.group, row.messages)
        created += len(made)
    return created


def _ask_requests(job: GenerationJob, units: list[_Unit], backend: GenerationBackend, classification: bool) -> None:
    """Step 1: the requests. A classification example is the request itself, so each candidate
    is a request of its own; otherwise one request per prompt and the candidates answer it."""
    cfg = job.config
    asks = cfg["candidates"] if classification else 1
    conversations = [[{"role": "user", "content": unit.request}] for unit in units for _k in range(asks)]
    replies = generate_detailed(
        backend, conversations, max_new_tokens=cfg["max_new_tokens"], temperature=cfg["temperature"]
    )
    for i, unit in enumerate(units):
        chunk = replies[i * asks : (i + 1) * asks]
        unit.prompts = [clean_request(g.text) for g in chunk]
        unit.prompt_generations = chunk


def _request_rows(
    units: list[_Unit], system: list[dict[str, Any]], checker: DraftChecker, errors: list[dict[str, Any]]
) -> dict[int, list[DraftRow]]:
    """Classification: every request the model wrote is a draft (the label comes with the unit)."""
    rows: dict[int, list[DraftRow]] = {}
    for unit in units:
        rows[unit.number] = []
        for k, (prompt, generation) in enumerate(zip(unit.prompts, unit.prompt_generations, strict=True)):
            if not prompt:
                errors.append({"key": f"p{unit.number}:{k}", "error": _("the model wrote no request")})
                continue
            messages = [*system, {"role": "user", "content": prompt}]
            rows[unit.number].append(
                _row(unit, k, messages, len(messages) - 1, prompt, generation, checker, unit.request)
            )
    return rows


def _answer_rows(
    job: GenerationJob,
    units: list[_Unit],
    system: list[dict[str, Any]],
    backend: GenerationBackend,
    checker: DraftChecker,
    errors: list[dict[str, Any]],
) -> dict[int, list[DraftRow]]:
    """Chat: each candidate answers the unit's request (then is critiqued and rewritten when the
    job asks for it); every answer is a draft."""
    cfg = job.config
    candidates = cfg["candidates"]
    answerable = [unit for unit in units if unit.prompts[0]]
    for unit in units:
        if not unit.prompts[0]:
            errors.append({"key": f"p{unit.number}", "error": _("the model wrote no request")})
    conversations = [
        [*_context(system, unit, cfg), {"role": "user", "content": unit.prompts[0]}]
        for unit in answerable
        for _k in range(candidates)
    ]
    tools = cfg.get("tools") or []
    answers = generate_detailed(
        backend,
        conversations,
        max_new_tokens=cfg["max_new_tokens"],
        temperature=cfg["temperature"],
        tools=[tools] * len(conversations) if tools else None,
    )
    critiques = _critiques(job, conversations, answers, backend)
    rows: dict[int, list[DraftRow]] = {}
    for u, unit in enumerate(answerable):
        rows[unit.number] = []
        for k in range(candidates):
            index = u * candidates + k
            answer, critique = answers[index], critiques[index]
            text, first, critique_text, unparsed = answer.text, "", "", False
            generation = answer
            if critique is not None:
                parsed = parse_critique(critique.text)
                if parsed is None:
                    unparsed = True
                else:
                    critique_text, text = parsed
                    first, generation = answer.text, critique
            messages = [*conversations[index], answer_turn(text, generation)]
            row = _row(unit, k, messages, len(messages) - 1, text, generation, checker, unit.request, tools)
            row.first_answer, row.critique = first, critique_text
            if unparsed:
                row.flags.append({"code": "critique_unparsed"})
            rows[unit.number].append(row)
    return rows


def _context(system: list[dict[str, Any]], unit: _Unit, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The system message an answer is written under: the project's, and, for a grounded job
    with `passage_context`, the passage after it (CONTEXT_HEADER), so that the answer rests on
    the passage and the example teaches answering from one."""
    if unit.grounding is None or not cfg.get("passage_context"):
        return system
    prompt = system[0]["content"] if system else ""
    context = f"{CONTEXT_HEADER}\n{unit.grounding.passage}"
    return [{"role": "system", "content": f"{prompt}\n\n{context}" if prompt else context}]


def _critiques(
    job: GenerationJob,
    conversations: list[list[dict[str, Any]]],
    answers: list[Generation],
    backend: GenerationBackend,
) -> list[Generation | None]:
    """The critique of each answer when the job asks for one (None per answer otherwise)."""
    cfg = job.config
    if not (cfg.get("critique") and answers):
        return [None] * len(answers)
    # An answer that calls a tool is not critiqued: the critique asks for a better text.
    asked = [index for index, answer in enumerate(answers) if not answer.tool_calls]
    asks_critique = [
        [{"role": "user", "content": CRITIQUE.format(request=conversations[i][-1]["content"], answer=answers[i].text)}]
        for i in asked
    ]
    replies = (
        generate_detailed(backend, asks_critique, max_new_tokens=cfg["max_new_tokens"], temperature=cfg["temperature"])
        if asked
        else []
    )
    critiques: list[Generation | None] = [None] * len(answers)
    for index, reply in zip(asked, replies, strict=True):
        critiques[index] = reply
    return critiques


def _row(
    unit: _Unit,
    candidate: int,
    messages: list[dict[str, Any]],
    target: int,
    text: str,
    generation: Generation,
    checker: DraftChecker,
    request: str,
    tools: list[dict[str, Any]] | None = None,
) -> DraftRow:
    group = f"p{unit.number}"
    metadata = {k: v for k, v in (("topic", unit.topic), ("task_type", unit.task_type)) if v}
    grounding = unit.grounding
    return DraftRow(
        key=f"{group}:{candidate}",
        group=group,
        candidate=candidate,
        messages=messages,
        target=target,
        label_id=unit.label_id,
        tools=list(tools or []),
        metadata=metadata,
        request=request,
        original=text,
        flags=checker.check(messages, target=target, group=group, generation=generation, tools=tools),
        document_id=grounding.document_id if grounding else None,
        passage=grounding.passage if grounding else "",
    )


def _fail(job: GenerationJob, message: str, errors: list[dict[str, Any]]) -> None:
    GenerationJob.objects.filter(pk=job.pk).update(
        status=GenerationJob.Status.FAILED, error=message, errors=errors, finished_at=timezone.now()
    )


def _reloaded(job: GenerationJob) -> GenerationJob:
    job.refresh_from_db()
    return job
