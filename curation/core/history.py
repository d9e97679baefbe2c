"""Reading an example's revisions as changes a person can follow, and putting one back.

``revision_diff`` turns two snapshots (``services.example_snapshot``) into plain data;
the template decides how it looks. Text is compared word by word, and CJK text character
by character: Japanese has no spaces, so a "word" would be the whole sentence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from curation.core.services import InvalidExample, example_update
from curation.models import Example, ExampleRevision
from text.diff import Segment, word_diff

FIELDS = ("messages", "tools", "label", "status", "split", "source", "metadata")
FIELD_NAMES = {
    "messages": gettext_lazy("Messages"),
    "tools": gettext_lazy("Tools"),
    "label": gettext_lazy("Label"),
    "status": gettext_lazy("Status"),
    "split": gettext_lazy("Split"),
    "source": gettext_lazy("Source"),
    "metadata": gettext_lazy("Metadata"),
}
_CHOICES: dict[str, dict[str, str]] = {
    "status": dict(Example.Status.choices),
    "split": dict(Example.Split.choices),
    "source": dict(Example.Source.choices),
}
RESTORED_FIELDS = ("messages", "tools", "label", "status", "split", "metadata")

_SENTENCE_END = re.compile(r"(?<=[.!?\n。！？])")


@dataclass(frozen=True)
class TurnChange:
    """One message that was added, removed or edited. ``index`` counts from 0 in the
    newer list, or in the older one for a removed turn."""

    index: int
    kind: str  # "added", "removed" or "changed"
    role_before: str | None
    role_after: str | None
    segments: list[Segment]

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def role(self) -> str | None:
        return self.role_after or self.role_before


@dataclass(frozen=True)
class KeyChange:
    key: str
    kind: str  # "added", "removed" or "changed"
    old: Any = None
    new: Any = None

    @property
    def old_text(self) -> str:
        return _value_text(self.old)

    @property
    def new_text(self) -> str:
        return _value_text(self.new)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any = None
    new: Any = None
    turns: list[TurnChange] = field(default_factory=list)
    keys: list[KeyChange] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(FIELD_NAMES.get(self.field, self.field))

    @property
    def old_text(self) -> str:
        return self._display(self.old)

    @property
    def new_text(self) -> str:
        text = self._display(self.new)
        if self.field == "tools" and self.old != self.new and text == self._display(self.old):
            # The same functions by name: their descriptions or parameters changed.
            return _("%(names)s (definitions changed)") % {"names": text or "—"}
        return text

    def _display(self, value: Any) -> str:
        if value is None:
            return ""
        if self.field == "tools":
            return _tools_text(value)
        return str(_CHOICES.get(self.field, {}).get(value, value))


def _tools_text(tools: Any) -> str:
    """Tools as their functions' names, "" for none; any other value as JSON."""
    if not isinstance(tools, list):
        return _value_text(tools)
    names = [
        str(t["function"].get("name")) if isinstance(t, dict) and isinstance(t.get("function"), dict) else "?"
        for t in tools
    ]
    return ", ".join(names)


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def text_diff(old: str, new: str) -> list[Segment]:
    """Word-level diff of two texts, as (op, text) segments that rebuild either side.

    Sentences are matched first and only the changed ones are compared word by word:
    comparing every word of a long answer with every other takes seconds, and sentences,
    unlike words, rarely repeat.
    """
    a, b = sentences(old), sentences(new)
    raw: list[Segment] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if tag == "equal":
            raw.append(("equal", "".join(a[i1:i2])))
        else:
            raw.extend(word_diff("".join(a[i1:i2]), "".join(b[j1:j2])))
    return _tidy(raw)


def sentences(text: str) -> list[str]:
    return [part for part in _SENTENCE_END.split(text) if part]


def _tidy(raw: list[Segment]) -> list[Segment]:
    """Deletions before insertions within one change, neighbours of one kind merged."""
    segments: list[Segment] = []
    deleted: list[str] = []
    inserted: list[str] = []

    def flush() -> None:
        if deleted:
            segments.append(("delete", "".join(deleted)))
        if inserted:
            segments.append(("insert", "".join(inserted)))
        deleted.clear()
        inserted.clear()

    for n, (op, text) in enumerate(raw):
        if not text:
            continue
        if op == "delete":
            deleted.append(text)
        elif op == "insert":
            inserted.append(text)
        elif (deleted or inserted) and not text.strip() and raw[n + 1 : n + 2] and raw[n + 1][0] != "equal":
            # A lone space between two changed words reads better inside one change than as
            # "<del>a</del><ins>b</ins> <del>c</del><ins>d</ins>".
            deleted.append(text)
            inserted.append(text)
        else:
            flush()
            if segments and segments[-1][0] == "equal":
                segments[-1] = ("equal", segments[-1][1] + text)
            else:
                segments.append(("equal", text))
    flush()
    return segments


def _content(message: Any) -> str:
    """A turn as its diff reads: the text, with the reasoning before it and the calls after."""
    content = message.get("content") if isinstance(message, dict) else message
    text = "" if content is None else content if isinstance(content, str) else _value_text(content)
    if not isinstance(message, dict) or len(message) <= 2:
        return text
    parts = [text] if text else []
    if isinstance(message.get("reasoning"), str) and message["reasoning"]:
        parts.insert(0, f"<think>{message['reasoning']}</think>")
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(f"→ {function.get('name')}({function.get('arguments')})")
    if message.get("weight") == 0:
        parts.append(_("(weight 0: not trained on)"))
    return "\n".join(parts)


def _role(message: Any) -> str | None:
    return message.get("role") if isinstance(message, dict) else None


def _turn_key(message: Any) -> str:
    return json.dumps(message, ensure_ascii=False, sort_keys=True)


def _pair_block(before: list[Any], after: list[Any], i0: int, j0: int) -> list[TurnChange]:
    """Turns of a changed stretch: edits where the roles line up, the rest added or removed."""
    changes: list[TurnChange] = []
    roles = SequenceMatcher(a=[_role(m) for m in before], b=[_role(m) for m in after], autojunk=False)
    for _tag, i1, i2, j1, j2 in roles.get_opcodes():
        paired = min(i2 - i1, j2 - j1)
        for k in range(paired):
            old, new = before[i1 + k], after[j1 + k]
            if old != new:
                changes.append(
                    TurnChange(j0 + j1 + k, "changed", _role(old), _role(new), text_diff(_content(old), _content(new)))
                )
        for i in range(i1 + paired, i2):
            m = before[i]
            changes.append(TurnChange(i0 + i, "removed", _role(m), None, [("delete", _content(m))]))
        for j in range(j1 + paired, j2):
            m = after[j]
            changes.append(TurnChange(j0 + j, "added", None, _role(m), [("insert", _content(m))]))
    return changes


def messages_diff(before: list[Any], after: list[Any]) -> list[TurnChange]:
    turns = SequenceMatcher(a=[_turn_key(m) for m in before], b=[_turn_key(m) for m in after], autojunk=False)
    changes: list[TurnChange] = []
    for tag, i1, i2, j1, j2 in turns.get_opcodes():
        if tag != "equal":
            changes.extend(_pair_block(before[i1:i2], after[j1:j2], i1, j1))
    return changes


def metadata_diff(before: dict[str, Any], after: dict[str, Any]) -> list[KeyChange]:
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if key not in after:
            changes.append(KeyChange(key, "removed", old=before[key]))
        elif key not in before:
            changes.append(KeyChange(key, "added", new=after[key]))
        elif before[key] != after[key]:
            changes.append(KeyChange(key, "changed", old=before[key], new=after[key]))
    return changes


def revision_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    """What changed between two snapshots, field by field; unchanged fields are left out.

    A missing snapshot (a creation has no ``before``, a deletion no ``after``) counts as
    empty, so a creation reads as every turn added.
    """
    before, after = before or {}, after or {}
    changes = []
    for name in FIELDS:
        old, new = before.get(name), after.get(name)
        if name == "tools":
            # Snapshots from before tools were kept have none: the example had none.
            old, new = old or [], new or []
        if old == new:
            continue
        if name == "messages" and isinstance(old or [], list) and isinstance(new or [], list):
            changes.append(FieldChange(name, old, new, turns=messages_diff(old or [], new or [])))
        elif name == "metadata" and isinstance(old or {}, dict) and isinstance(new or {}, dict):
            keys = metadata_diff(old or {}, new or {})
            if keys:
                changes.append(FieldChange(name, old, new, keys=keys))
        else:
            changes.append(FieldChange(name, old, new))
    return changes


@dataclass(frozen=True)
class HistoryEntry:
    revision: ExampleRevision
    changes: list[FieldChange]
    restorable: bool  # it left a snapshot that differs from the example's current version


@dataclass(frozen=True)
class History:
    entries: list[HistoryEntry]
    truncated: bool  # older revisions exist beyond ``limit``
    limit: int


def revision_history(*, example: Example, limit: int = 50) -> History:
    """The example's revisions, newest first, each with its changes: one query."""
    revisions = list(example.revisions.select_related("user").order_by("-created_at", "-id")[: limit + 1])
    entries = [
        HistoryEntry(
            revision=r,
            changes=revision_diff(r.before, r.after),
            restorable=r.after is not None and r.version != example.version,
        )
        for r in revisions[:limit]
    ]
    return History(entries=entries, truncated=len(revisions) > limit, limit=limit)


@transaction.atomic
def example_restore(*, example: Example, revision: ExampleRevision, user: Any, version: int) -> Example:
    """Put the example back as it was after ``revision``, as a new revision of its own.

    ``version`` is the one the person saw; if someone saved since, StaleVersion is raised
    and nothing changes. The source is not restored: it records where the example came
    from, not something a person edits.
    """
    if revision.example_id != example.pk:
        raise InvalidExample("revision", _("This revision belongs to another example."))
    if revision.after is None:
        raise InvalidExample("revision", _("This revision left nothing to restore."))
    snapshot = revision.after
    label = snapshot.get("label")
    if label and not example.project.labels.filter(name=label).exists():
        raise InvalidExample(
            "label",
            _(
                "Version %(version)s has the label “%(label)s”, which this project no longer has. "
                "Add the label again, then restore."
            )
            % {"version": revision.version, "label": label},
        )
    changes = {name: snapshot[name] for name in RESTORED_FIELDS if name in snapshot}
    # A snapshot without tools is from before they were kept: the example had none then.
    changes["tools"] = snapshot.get("tools") or []
    return example_update(example=example, user=user, version=version, action=ExampleRevision.Action.RESTORE, **changes)
