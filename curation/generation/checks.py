"""Checks every draft gets before a reviewer sees it. Findings are flags stored with the draft
and shown next to it; nothing is hidden or dropped because of them.

A flag is a small dict: ``code`` and, where they apply, ``example`` (the id it duplicates),
``similarity``, ``detail`` (a parser's message), and for a tool call ``call`` (its id) and
``name`` (its function). `flag_message` turns one into a sentence in the reader's language.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils.translation import gettext as _

from curation.generation.tools import tool_flag_message, tool_flags
from curation.models import Example, Project
from curation.quality.near_dupes import NearIndex, normalise
from llm import toolcalls
from llm.interface import Generation

log = logging.getLogger(__name__)

FLAG_CODES = (
    "empty",
    "truncated",
    "over_long",
    "format",
    "exact_duplicate",
    "near_duplicate",
    "same_prompt",
    "critique_unparsed",
    toolcalls.UNKNOWN,
    toolcalls.ARGUMENTS_INVALID,
    toolcalls.ARGUMENTS_SCHEMA,
)


def flag_message(flag: dict[str, Any]) -> str:
    code = flag.get("code")
    values = {"example": flag.get("example"), "detail": flag.get("detail", ""), "tokens": flag.get("tokens")}
    if code == "empty":
        return _("The model wrote nothing.")
    if code == "truncated":
        return _("Cut off: the model reached the token limit before it finished.")
    if code == "over_long":
        return _("Too long to train on: %(tokens)s tokens, more than the project's sequence length %(limit)s.") % {
            **values,
            "limit": flag.get("limit"),
        }
    if code == "format":
        return _("Not valid structured output: %(detail)s") % values
    if code == "exact_duplicate":
        return _("Exact duplicate of example #%(example)s.") % values
    if code == "near_duplicate":
        return _("Near duplicate of example #%(example)s (%(percent)s%% alike).") % {
            **values,
            "percent": round(100 * float(flag.get("similarity") or 0)),
        }
    if code == "same_prompt":
        return _("Example #%(example)s has the same request.") % values
    if code == "critique_unparsed":
        return _("The critique step gave no improved answer; this is the first answer.")
    return tool_flag_message(flag) or str(code)


def _texts(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """What duplicates are looked for in: every turn but the system prompt, and the request."""
    whole = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") != "system")
    request = next((str(m.get("content") or "") for m in messages if m.get("role") == "user"), "")
    return whole, request


class DraftChecker:
    """Checks drafts of one job against the project's other examples and the job's own drafts.

    Built once per job run: it reads every example of the project once and indexes them for
    near duplicates, so each draft costs a lookup, not a pass over the project.
    """

    def __init__(self, project: Project, *, job_id: int | None = None) -> None:
        self.project = project
        self.job_id = job_id
        rows = Example.objects.filter(project=project).exclude(generation_job_id=job_id).order_by("id")
        self.ids: list[int] = []
        texts: list[str] = []
        self.hashes: dict[str, int] = {}
        self.wholes: dict[str, int] = {}
        self.requests: dict[str, int] = {}
        for pk, messages, digest in rows.values_list("id", "messages", "content_hash").iterator(chunk_size=2000):
            whole, request = _texts(messages)
            self.ids.append(pk)
            texts.append(whole)
            self.hashes.setdefault(digest, pk)
            self.wholes.setdefault(normalise(whole), pk)
            if request.strip():
                self.requests.setdefault(normalise(request), pk)
        self.index = NearIndex(texts, threshold=project.dedupe_threshold)
        # The job's own drafts, as they are made: (id, group, whole text).
        self.own: list[tuple[int, str, str]] = []
        self.own_requests: dict[str, list[tuple[int, str]]] = {}
        self._own_index: NearIndex | None = None
        self._tokenizer: Any = None
        self.length_problem = ""
        if project.kind == Project.Kind.STRUCTURED and project.json_schema is not None:
            from curation.quality.formats import check_schema

            self.schema = None if check_schema(project.json_schema) else project.json_schema
        else:
            self.schema = project.json_schema

    def remember(self, example_id: int, group: str, messages: list[dict[str, Any]]) -> None:
        """Count a draft of this job in the duplicate checks of the drafts that follow."""
        whole, request = _texts(messages)
        self.own.append((example_id, group, whole))
        if request.strip():
            self.own_requests.setdefault(normalise(request), []).append((example_id, group))

    def load_own(self) -> None:
        """Take the drafts an earlier run of this job made (a resumed job) into account."""
        if self.job_id is None:
            return
        for draft in Example.objects.filter(generation_job_id=self.job_id).select_related("draft").order_by("id"):
            group = getattr(getattr(draft, "draft", None), "group", "")
            self.remember(draft.pk, group, draft.messages)

    def check(
        self,
        messages: list[dict[str, Any]],
        *,
        target: int,
        group: str,
        generation: Generation | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The flags of a draft whose message `target` the model wrote; `tools` are the example's."""
        flags: list[dict[str, Any]] = []
        written = messages[target] if 0 <= target < len(messages) else {}
        text = str(written.get("content") or "")
        if not text.strip() and not written.get("tool_calls"):
            flags.append({"code": "empty"})
        if generation is not None and generation.truncated:
            flags.append({"code": "truncated"})
        flags.extend(tool_flags(written, tools))
        tokens = self._tokens(messages, tools)
        if tokens is not None and tokens > self.project.max_seq_length:
            flags.append({"code": "over_long", "tokens": tokens, "limit": self.project.max_seq_length})
        only_calls = bool(written.get("tool_calls")) and not text.strip()
        if self.project.kind == Project.Kind.STRUCTURED and written.get("role") == "assistant" and not only_calls:
            from curation.quality.formats import check_structured

            problems = check_structured([messages[target]], format=self.project.structured_format, schema=self.schema)
            if problems:
                flags.append({"code": "format", "detail": "; ".join(problems)})
        flags.extend(self._duplicates(messages, group, tools))
        return flags

    def _duplicates(
        self, messages: list[dict[str, Any]], group: str, tools: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        from curation.core.services import content_hash

        whole, request = _texts(messages)
        key = normalise(whole)
        exact = self.hashes.get(content_hash(messages, tools)) or self.wholes.get(key)
        if exact is None:
            exact = next((pk for pk, g, text in self.own if g != group and normalise(text) == key), None)
        if exact is not None:
            return [{"code": "exact_duplicate", "example": exact}]
        found: list[dict[str, Any]] = []
        hits = [(self.ids[i], s) for i, s in self.index.query(whole)]
        if self.own:
            # Rebuilt when drafts were added since; a job makes hundreds, not millions.
            if self._own_index is None or self._own_index.size != len(self.own):
                self._own_index = NearIndex(
                    [text for _pk, _g, text in self.own], threshold=self.project.dedupe_threshold
                )
            hits += [(self.own[i][0], s) for i, s in self._own_index.query(whole) if self.own[i][1] != group]
        if hits:
            pk, similarity = max(hits, key=lambda hit: (hit[1], -hit[0]))
            found.append({"code": "near_duplicate", "example": pk, "similarity": similarity})
        if request.strip():
            folded = normalise(request)
            same = self.requests.get(folded)
            if same is None:
                same = next((pk for pk, g in self.own_requests.get(folded, []) if g != group), None)
            if same is not None:
                found.append({"code": "same_prompt", "example": same})
        return found

    def _tokens(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> int | None:
        if self.length_problem:
            return None
        from curation.quality import lengths

        try:
            if self._tokenizer is None:
                self._tokenizer = lengths.load_tokenizer(self.project.base_model)
            return lengths.count_tokens(self._tokenizer, [messages], tools=[tools])[0]
        except lengths.LengthError as error:
            self.length_problem = str(error)
            log.warning("draft length check skipped: %s", error)
            return None
