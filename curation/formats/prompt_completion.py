"""Prompt/completion files: JSON Lines of {"prompt", "completion"}.

A prompt becomes the user's message and the completion the assistant's. TRL's
conversational variant, where both are lists of messages, is read as those messages.
The export writes one user turn and its reply; ``cannot_hold`` names what else an example
has (a system prompt, several turns, tool calls...), and such an example is left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.translation import gettext as _

from curation.formats import alpaca
from curation.formats.conversation import take_shikomi_fields
from curation.formats.reading import JsonSource
from curation.formats.rows import (
    ExportRow,
    ReadOptions,
    Row,
    describe,
    dumps,
    encode_chunks,
    extras_into_metadata,
)

KNOWN_KEYS = frozenset(("prompt", "completion", "label", "split", "metadata"))
CONTENT_TYPE = "application/jsonl; charset=utf-8"
EXTENSION = "jsonl"


def row_from_record(line: int, record: dict[str, Any], options: ReadOptions) -> Row:
    row = Row(line, None, record.get("label"), record.get("split"))
    extras_into_metadata(record, KNOWN_KEYS | take_shikomi_fields(record, row), row)
    prompt = record.get("prompt")
    completion = record.get("completion")
    for key, value in (("prompt", prompt), ("completion", completion)):
        if value is None:
            row.error(
                "missing_field",
                key,
                _('no "%(key)s"; a record needs "prompt" and "completion"') % {"key": key},
            )
        elif not isinstance(value, str | list):
            row.error("invalid_field", key, _("expected text, found %(found)s") % {"found": describe(value)})
    if row.errors:
        return row
    if isinstance(prompt, list) or isinstance(completion, list):
        # Conversational: both are lists of messages, checked like any other messages.
        row.messages = _as_list(prompt) + _as_list(completion)
        return row
    if not prompt.strip():
        row.error("empty_content", "prompt", _('"prompt" is empty; write its text'))
    messages = [{"role": "user", "content": prompt}]
    if completion.strip():
        messages.append({"role": "assistant", "content": completion})
    elif not options.classification:
        row.error("empty_content", "completion", _('"completion" is empty; write its text'))
    row.chat = False  # the reply was checked here, as "completion"
    if not row.errors:
        row.messages = messages
    return row


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [{"role": "user", "content": value}]


def read(path: str | os.PathLike[str], options: ReadOptions) -> JsonSource:
    return JsonSource(path, options, row_from_record)


def cannot_hold(row: ExportRow, *, classification: bool = False) -> str | None:
    """Why a prompt/completion record cannot hold the example (a short reason), or None."""
    turns = alpaca.plain_turns(row)
    if isinstance(turns, str):
        return turns
    system, pairs = turns
    if system is not None:
        return _("system prompt")
    if len(pairs) > 1:
        return _("several turns")
    return alpaca.no_reply(pairs, classification)


def write(rows: Iterable[ExportRow], *, classification: bool = False, shikomi_fields: bool = False) -> Iterator[bytes]:
    """One user turn and its reply (with Shikomi fields: id, status, label_source, split and
    metadata too)."""

    def lines() -> Iterator[str]:
        for row in rows:
            turns = alpaca.plain_turns(row)
            if isinstance(turns, str) or cannot_hold(row, classification=classification) is not None:
                continue  # counted and reported by the export before it starts
            [[prompt, completion]] = turns[1]
            record = {"prompt": prompt, "completion": completion or ""}
            yield dumps(alpaca.shikomi_record(record, row, shikomi_fields)) + "\n"

    return encode_chunks(lines())
