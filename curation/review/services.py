"""The review loop for drafts: approve, edit then approve, reject with reasons, or rank the
candidates for one prompt. Every decision is one transaction; a decision on a draft someone
else has already decided, or whose example changed since it was shown, is refused with the
name of who did what, never applied on top.

Edits and rankings yield preference pairs (prompt, chosen, rejected) for DPO.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from curation.core.errors import ServiceError
from curation.core.services import InvalidExample, StaleVersion, example_update, needs_reply, validate_messages
from curation.generation import ConfigError
from curation.generation.stats import NONE_GOOD_ENOUGH, REJECT_REASONS
from curation.models import Draft, Example, GenerationJob, PreferencePair, Project

MAX_NOTE = 5_000


class ReviewConflict(ServiceError):
    """The draft was decided by someone else, or its example changed, since it was shown."""

    status = 409

    def __init__(self, message: str, draft: Draft | None = None) -> None:
        super().__init__("", message)
        self.draft = draft


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance in characters (insertions, deletions, substitutions).

    One row of the table at a time with numpy: the insertion term is a running minimum,
    D[j] = j + min over k <= j of (T[k] - k), so each row is a few array operations and a
    2,000-character answer takes milliseconds, not the seconds a Python double loop takes.
    """
    if a == b:
        return 0
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    codes_b = np.frombuffer(b.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    positions = np.arange(len(b) + 1, dtype=np.int64)
    row = positions.copy()
    for i, char in enumerate(a, start=1):
        cost = (codes_b != ord(char)).astype(np.int64)
        candidate = np.empty_like(row)
        candidate[0] = i
        np.minimum(row[1:] + 1, row[:-1] + cost, out=candidate[1:])
        row = np.minimum.accumulate(candidate - positions) + positions
    return int(row[-1])


def edit_share(a: str, b: str) -> float:
    """Edit distance as a share of the longer text: 0 unchanged, 1 rewritten entirely."""
    longest = max(len(a), len(b))
    return round(edit_distance(a, b) / longest, 4) if longest else 0.0


def _target_text(messages: list[dict[str, Any]], target: int) -> str:
    return str(messages[target].get("content") or "") if 0 <= target < len(messages) else ""


def _claim(draft: Draft, user: Any, **fields: Any) -> None:
    """Record the decision if the draft is still pending; else ReviewConflict."""
    updated = Draft.objects.filter(pk=draft.pk, decision=Draft.Decision.PENDING).update(
        reviewed_by=user if getattr(user, "is_authenticated", False) else None, reviewed_at=timezone.now(), **fields
    )
    if not updated:
        current = Draft.objects.select_related("reviewed_by").get(pk=draft.pk)
        who = current.reviewed_by.get_username() if current.reviewed_by else _("someone")
        raise ReviewConflict(
            _("%(who)s has already decided this draft: %(decision)s.")
            % {"who": who, "decision": current.get_decision_display()},
            current,
        )


def _stale(error: StaleVersion) -> ReviewConflict:
    return ReviewConflict(
        _("The example was changed by someone else (it is now at version %(version)s); reload and look again.")
        % {"version": error.current.version}
    )


def _may_pair(draft: Draft, messages: list[dict[str, Any]]) -> bool:
    return 0 <= draft.target < len(messages) and messages[draft.target].get("role") == "assistant"


def answer_of(message: dict[str, Any]) -> dict[str, Any]:
    """The assistant message a pair keeps: the turn as written (content, reasoning, tool calls,
    name), without its training weight, which is about supervised training, not preferences."""
    return {key: value for key, value in message.items() if key != "weight"}


def _says_something(message: dict[str, Any]) -> bool:
    return bool(str(message.get("content") or "").strip() or message.get("tool_calls"))


def _pair(
    draft: Draft,
    messages: list[dict[str, Any]],
    chosen: dict[str, Any],
    rejected: dict[str, Any],
    origin: str,
    user: Any,
    tools: list[dict[str, Any]] | None,
) -> PreferencePair | None:
    """A pair of two answers to `messages[:draft.target]` (the whole conversation before the
    answer), or None when the answers are the same or one of them says nothing."""
    chosen, rejected = answer_of(chosen), answer_of(rejected)
    if chosen == rejected or not _says_something(chosen) or not _says_something(rejected):
        return None
    return PreferencePair.objects.create(
        project_id=draft.project_id,
        example_id=draft.example_id,
        job_id=draft.job_id,
        prompt=messages[: draft.target],
        chosen=chosen,
        rejected=rejected,
        tools=list(tools or []),
        origin=origin,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


def _model_answer(draft: Draft, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The message the model wrote, as it wrote it: the stored turn, with the model's own text
    when the draft kept it (an edit outside the queue does not make it the model's)."""
    message = dict(messages[draft.target]) if 0 <= draft.target < len(messages) else {"role": "assistant"}
    if draft.original:
        message["content"] = draft.original
    return message


@transaction.atomic
def draft_approve(
    *,
    draft: Draft,
    user: Any,
    version: int,
    messages: list[dict[str, Any]] | None = None,
    label: str | None = None,
    note: str = "",
) -> Draft:
    """Approve the draft as it is, or with `messages` edited (then the model's text and the
    edited one become a preference pair). The example becomes an approved example."""
    example = draft.example
    if example.status != Example.Status.DRAFT and draft.decision == Draft.Decision.PENDING:
        raise ReviewConflict(_("The example is no longer a draft; it was changed outside the review queue."))
    changes: dict[str, Any] = {"status": Example.Status.APPROVED}
    edited = messages is not None and messages != example.messages
    if edited:
        changes["messages"] = messages
    if label is not None:
        changes["label"] = label
    before = example.messages
    final = messages if edited else before
    try:
        validate_messages(final, needs_reply=needs_reply(example.project))
    except InvalidExample as error:
        raise ConfigError("messages", _("It cannot be approved as it is: %(problem)s") % {"problem": error}) from None
    before_text = draft.original if draft.original else _target_text(before, draft.target)
    after_text = _target_text(final, draft.target)
    distance = edit_share(before_text, after_text)
    decision = Draft.Decision.EDITED if edited else Draft.Decision.APPROVED
    _claim(draft, user, decision=decision, edit_distance=distance, note=note[:MAX_NOTE])
    try:
        example_update(example=example, user=user, version=version, **changes)
    except StaleVersion as error:
        raise _stale(error) from None
    if edited and _may_pair(draft, final):
        rejected = _model_answer(draft, before)
        _pair(draft, final, final[draft.target], rejected, PreferencePair.Origin.EDIT, user, example.tools)
    draft.refresh_from_db()
    return draft


@transaction.atomic
def draft_reject(*, draft: Draft, user: Any, version: int, reasons: list[str], note: str = "") -> Draft:
    """Reject the draft with at least one reason from REJECT_REASONS (and a note for "other")."""
    unknown = [r for r in reasons if r not in REJECT_REASONS]
    if unknown:
        raise ConfigError(
            "reasons",
            _("Unknown reason %(reason)r; choose from %(known)s.")
            % {"reason": unknown[0], "known": ", ".join(REJECT_REASONS)},
        )
    reasons = list(dict.fromkeys(reasons))
    if not reasons:
        raise ConfigError("reasons", _("Choose at least one reason."))
    if reasons == ["other"] and not note.strip():
        raise ConfigError("note", _("Say in the note what is wrong when the reason is Other."))
    _claim(draft, user, decision=Draft.Decision.REJECTED, reasons=reasons, note=note[:MAX_NOTE])
    try:
        example_update(example=draft.example, user=user, version=version, status=Example.Status.REJECTED)
    except StaleVersion as error:
        raise _stale(error) from None
    draft.refresh_from_db()
    return draft


def _ranked_drafts(project: Project, order: list[int]) -> list[Draft]:
    """The drafts named by `order`, checked: at least two, all of one prompt, every open
    candidate of that prompt named."""
    if len(order) < 2 or len(set(order)) != len(order):
        raise ConfigError("order", _("Rank at least two different candidates."))
    drafts = {
        d.example_id: d
        for d in Draft.objects.select_related("example", "example__project").filter(
            project=project, example_id__in=order
        )
    }
    missing = [pk for pk in order if pk not in drafts]
    if missing:
        raise ConfigError("order", _("No such drafts in this project: %(ids)s") % {"ids": missing})
    groups = {(d.job_id, d.group) for d in drafts.values()}
    if len(groups) != 1:
        raise ConfigError("order", _("Only candidates for the same prompt can be ranked together."))
    ((job_id, group),) = groups
    pending = set(
        Draft.objects.filter(job_id=job_id, group=group, decision=Draft.Decision.PENDING).values_list(
            "example_id", flat=True
        )
    )
    if left_out := sorted(pending - set(order)):
        raise ConfigError("order", _("Rank every open candidate of this prompt; missing: %(ids)s") % {"ids": left_out})
    return [drafts[pk] for pk in order]


@transaction.atomic
def drafts_rank(
    *,
    project: Project,
    user: Any,
    order: list[int],
    versions: dict[int, int],
    note: str = "",
    none_good_enough: bool = False,
) -> Draft:
    """Rank the candidates for one prompt, best first (example ids). The best is approved; the
    others are set aside (status rejected, decision "ranked lower"); every pair of places in
    the ranking becomes a preference pair. Returns the best draft.

    With `none_good_enough`, the preference between the candidates is recorded all the same,
    but none is approved: every candidate is rejected with the reason "none_good_enough"."""
    ranked = _ranked_drafts(project, order)
    for place, draft in enumerate(ranked, start=1):
        if draft.example_id not in versions:
            raise ConfigError("versions", _("The version of example %(id)s is missing.") % {"id": draft.example_id})
        best = place == 1 and not none_good_enough
        if best:
            decision = Draft.Decision.APPROVED
        else:
            decision = Draft.Decision.REJECTED if none_good_enough else Draft.Decision.RANKED_LOWER
        _claim(
            draft,
            user,
            decision=decision,
            rank=place,
            edit_distance=0.0 if best else None,
            reasons=[NONE_GOOD_ENOUGH] if none_good_enough else [],
            note=note[:MAX_NOTE] if best or (none_good_enough and place == 1) else "",
        )
        try:
            example_update(
                example=draft.example,
                user=user,
                version=versions[draft.example_id],
                status=Example.Status.APPROVED if best else Example.Status.REJECTED,
            )
        except StaleVersion as error:
            raise _stale(error) from None
    top = ranked[0]
    if all(_may_pair(d, d.example.messages) for d in ranked):
        answers = [d.example.messages[d.target] for d in ranked]
        for i in range(len(ranked)):
            for j in range(i + 1, len(ranked)):
                _pair(
                    ranked[i],
                    top.example.messages,
                    answers[i],
                    answers[j],
                    PreferencePair.Origin.RANKING,
                    user,
                    top.example.tools,
                )
    top.refresh_from_db()
    return top


def pending_drafts(project: Project, *, job: GenerationJob | None = None) -> QuerySet[Draft]:
    # A draft moved out of "draft" status on the example pages without a decision waits no more.
    drafts = Draft.objects.filter(
        project=project, decision=Draft.Decision.PENDING, example__status=Example.Status.DRAFT
    )
    if job is not None:
        drafts = drafts.filter(job=job)
    return drafts.select_related("example", "example__label", "job", "template", "document").order_by("job_id", "id")


def next_group(project: Project, *, job: GenerationJob | None = None, after: int | None = None) -> list[Draft]:
    """The candidates of the next prompt waiting for review (oldest first), optionally after
    the prompt whose first draft is `after` (to skip one)."""
    drafts = pending_drafts(project, job=job)
    if after is not None:
        drafts = drafts.filter(id__gt=after)
    first = drafts.first()
    if first is None:
        return []
    return list(pending_drafts(project, job=first.job).filter(group=first.group))


PAIR_FORMATS = ("conversational", "standard")


def _check_format(format: str) -> None:
    if format not in PAIR_FORMATS:
        raise ConfigError("format", _("Choose one of %(formats)s.") % {"formats": ", ".join(PAIR_FORMATS)})


def pair_cannot_hold(pair: PreferencePair, *, format: str) -> str | None:
    """Why `format` cannot hold the pair (a short reason), or None. The conversational shape
    holds every pair; the standard one is plain text, so an answer that calls tools (or a prompt
    with tools or calls) cannot be written in it."""
    if format != "standard":
        return None
    answers = (pair.chosen, pair.rejected)
    if any(isinstance(m, dict) and m.get("tool_calls") for m in answers):
        return _("tool calls")
    if pair.tools or any(m.get("tool_calls") or m.get("role") == "tool" for m in pair.prompt or []):
        return _("tools")
    return None


def _text(message: Any) -> str:
    """An answer as plain text: its reasoning as a leading <think> block, as the text formats
    write it (curation/formats/conversation.py with_think), so an import reads it back."""
    if not isinstance(message, dict):
        return str(message or "")
    content = str(message.get("content") or "")
    reasoning = message.get("reasoning")
    return f"<think>\n{reasoning}\n</think>\n\n{content}" if reasoning else content


def preference_record(pair: PreferencePair, *, format: str = "conversational") -> dict[str, Any]:
    """One pair in a shape TRL's DPOTrainer reads.

    conversational: prompt is the list of messages before the answer, chosen and rejected are
    one assistant message each, as stored (tool calls and reasoning kept; TRL applies the
    model's chat template), and "tools" when the pair has some. standard: plain strings, the
    prompt being the last user turn (see pair_cannot_hold for what it cannot hold).
    """
    _check_format(format)
    if format == "conversational":
        record: dict[str, Any] = {"prompt": pair.prompt, "chosen": [pair.chosen], "rejected": [pair.rejected]}
        if pair.tools:
            record["tools"] = pair.tools
        return record
    prompt = next((str(m.get("content") or "") for m in reversed(pair.prompt) if m.get("role") == "user"), "")
    return {"prompt": prompt, "chosen": _text(pair.chosen), "rejected": _text(pair.rejected)}


def _pairs(project: Project) -> QuerySet[PreferencePair]:
    return PreferencePair.objects.filter(project=project).order_by("id")


def preferences_skipped(project: Project, *, format: str = "conversational") -> dict[str, int]:
    """The pairs `format` cannot hold, counted per reason: known before the export starts, so
    pages, the API and the command can say what is left out (as example exports do)."""
    _check_format(format)
    if format == "conversational":
        return {}
    counts: Counter[str] = Counter()
    for pair in _pairs(project).only("prompt", "chosen", "rejected", "tools").iterator(chunk_size=1000):
        reason = pair_cannot_hold(pair, format=format)
        if reason is not None:
            counts[reason] += 1
    return dict(counts)


def preferences_jsonl(project: Project, *, format: str = "conversational") -> Iterator[str]:
    """The project's preference pairs as JSON Lines, oldest first; each line ends in a newline.
    Pairs the format cannot hold are left out (preferences_skipped counts them)."""
    _check_format(format)
    for pair in _pairs(project).iterator(chunk_size=1000):
        if pair_cannot_hold(pair, format=format) is None:
            yield json.dumps(preference_record(pair, format=format), ensure_ascii=False) + "\n"
