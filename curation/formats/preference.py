"""Preference files: a prompt and two answers to it, the chosen one and the rejected one, as
JSON Lines, a JSON array or Parquet, in the layouts DPO trainers read:

- TRL's conversational shape: {"prompt": [messages], "chosen": [assistant message],
  "rejected": [assistant message], "tools"?}; without "prompt", chosen and rejected are whole
  conversations and the prompt is what they share (TRL's implicit prompt);
- TRL's standard shape: {"prompt": "text", "chosen": "text", "rejected": "text"} (the prompt is
  one user message, a leading <think> block of an answer its reasoning);
- LLaMA-Factory's ShareGPT ranking layout: {"conversations": [...], "chosen": {"from": "gpt",
  "value": ...}, "rejected": {...}, "system"?, "tools"?}, read as the sharegpt format reads turns.

Each record becomes one example, the prompt followed by the chosen answer (checked like any
imported example), and a PreferenceRow carries the rejected answer for the preference pair
(curation/io/imports.py writes both). Errors name the record's line and its field: prompt[i],
chosen, rejected (conversations[i] in the ShareGPT layout).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils.translation import gettext as _

from curation.formats import sharegpt
from curation.formats.checks import check_row
from curation.formats.conversation import assign_call_ids, message_from, take_shikomi_fields, tools_from
from curation.formats.reading import JsonSource
from curation.formats.rows import DecodedTooLarge, ReadOptions, Row, RowError, Source, describe, extras_into_metadata

KNOWN_KEYS = frozenset(("prompt", "chosen", "rejected", "tools", "label", "split", "metadata"))
SHAREGPT_KEYS = frozenset(("conversations", "chosen", "rejected", "system", "tools", "label", "split", "metadata"))
PARQUET_MAGIC = b"PAR1"
BATCH_ROWS = 1000


@dataclass(slots=True)
class PreferenceRow(Row):
    """An example (the prompt, then the chosen answer) and the rejected answer of its pair."""

    rejected: Any = None

    @property
    def pair(self) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        """(prompt, chosen, rejected) of a row without errors."""
        return self.messages[:-1], self.messages[-1], self.rejected


# --- one record ---------------------------------------------------------------------------


def row_from_record(line: int, record: dict[str, Any], options: ReadOptions) -> Row:
    row = PreferenceRow(line, None, record.get("label"), record.get("split"))
    sharegpt_layout = "conversations" in record and "prompt" not in record
    known = (SHAREGPT_KEYS if sharegpt_layout else KNOWN_KEYS) | take_shikomi_fields(record, row)
    extras_into_metadata(record, known, row)
    for key in ("chosen", "rejected"):
        if key not in record:
            return row.error(
                "missing_field", key, _('no "%(key)s"; a preference record needs both answers') % {"key": key}
            )
    if sharegpt_layout:
        prompt, chosen, rejected = _sharegpt(row, record, options)
    else:
        tools, error = tools_from(record.get("tools"), options.memo)
        if error:
            row.error("invalid_field", "tools", error)
        row.tools = tools
        prompt, chosen, rejected = _trl(row, record)
    if row.errors or prompt is None:
        return row
    _check_answers(row, prompt, chosen, rejected, options, "conversations" if sharegpt_layout else "prompt")
    if not row.errors:
        row.messages = [*prompt, chosen]
        assign_call_ids(row.messages)
        other = [*(dict(m) for m in prompt), rejected]
        assign_call_ids(other)
        row.rejected = other[-1]
    return row


def _trl(row: PreferenceRow, record: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(prompt, chosen, rejected) of TRL's conversational or standard shape."""
    prompt, chosen, rejected = record.get("prompt"), record["chosen"], record["rejected"]
    if isinstance(prompt, str) or (prompt is None and isinstance(chosen, str)):
        if prompt is None:
            row.error("missing_field", "prompt", _('no "prompt"; plain-text answers need the prompt they answer'))
            return None, None, None
        answers = [_text_answer(row, key, value) for key, value in (("chosen", chosen), ("rejected", rejected))]
        return [{"role": "user", "content": prompt}], answers[0], answers[1]
    if prompt is None:
        return _implicit_prompt(row, chosen, rejected)
    if not isinstance(prompt, list):
        row.error(
            "invalid_field",
            "prompt",
            _("expected text or a list of messages, found %(found)s") % {"found": describe(prompt)},
        )
        return None, None, None
    prompt = [message_from(m) for m in prompt]
    return prompt, _one_answer(row, "chosen", chosen), _one_answer(row, "rejected", rejected)


def _text_answer(row: PreferenceRow, key: str, value: Any) -> Any:
    if not isinstance(value, str):
        row.error(
            "invalid_field", key, _("expected text, like the prompt, found %(found)s") % {"found": describe(value)}
        )
        return None
    return message_from({"role": "assistant", "content": value})


def _one_answer(row: PreferenceRow, key: str, value: Any) -> Any:
    """The one assistant message of a conversational answer (a list of one, or the message)."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or len(value) != 1:
        found = _("%(n)d messages") % {"n": len(value)} if isinstance(value, list) else describe(value)
        row.error(
            "invalid_field",
            key,
            _("expected a list of one assistant message, found %(found)s; a pair compares one answer turn")
            % {"found": found},
        )
        return None
    return message_from(value[0])


def _implicit_prompt(row: PreferenceRow, chosen: Any, rejected: Any) -> tuple[Any, Any, Any]:
    """TRL's implicit prompt: two whole conversations, the prompt being the messages they share."""
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        row.error(
            "missing_field", "prompt", _('no "prompt"; expected it, or chosen and rejected as whole conversations')
        )
        return None, None, None
    chosen = [message_from(m) for m in chosen]
    rejected = [message_from(m) for m in rejected]
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    answers = [_one_answer(row, key, part[shared:]) for key, part in (("chosen", chosen), ("rejected", rejected))]
    return chosen[:shared], answers[0], answers[1]


def _sharegpt(row: PreferenceRow, record: dict[str, Any], options: ReadOptions) -> tuple[Any, Any, Any]:
    """(prompt, chosen, rejected) of LLaMA-Factory's ranking layout, each side read as one
    ShareGPT conversation so that calls, results and their ids read as the sharegpt format reads them."""
    turns = record.get("conversations")
    base = {key: record[key] for key in ("system", "tools") if key in record}
    if not isinstance(turns, list):
        read = sharegpt.row_from_record(row.line, {**base, "conversations": turns}, options)
        row.errors.extend(read.errors)
        return None, None, None
    sides = []
    for key in ("chosen", "rejected"):
        read = sharegpt.row_from_record(row.line, {**base, "conversations": [*turns, record[key]]}, options)
        for error in read.errors:
            if error.field.startswith(f"conversations[{len(turns)}]"):
                error.field = key + error.field[len(f"conversations[{len(turns)}]") :]
            if key == "chosen" or error.field.startswith(key):  # the prompt's errors once
                row.errors.append(error)
        sides.append(read)
    row.tools = sides[0].tools
    if row.errors:
        return None, None, None
    chosen, rejected = sides[0].messages, sides[1].messages
    return chosen[:-1], chosen[-1], rejected[-1]


def _check_answers(
    row: PreferenceRow, prompt: list[Any], chosen: Any, rejected: Any, options: ReadOptions, name: str
) -> None:
    """Both answers are assistant turns, and prompt + each answer obeys the rules an example
    obeys, with the fields named for the record: prompt[i] (or conversations[i]), chosen, rejected."""
    for key, answer in (("chosen", chosen), ("rejected", rejected)):
        if not isinstance(answer, dict) or answer.get("role") != "assistant":
            role = answer.get("role") if isinstance(answer, dict) else None
            found = f'role "{role}"' if isinstance(role, str) else describe(answer)
            row.error("invalid_field", key, _("expected an assistant message, found %(found)s") % {"found": found})
    if row.errors:
        return
    if {**chosen, "content": str(chosen.get("content") or "").strip()} == {
        **rejected,
        "content": str(rejected.get("content") or "").strip(),
    }:
        row.error("same_answers", "rejected", _("the same as the chosen answer; a pair needs two different answers"))
        return
    if not prompt:
        row.error("empty_messages", name, _("the prompt is empty; a pair answers at least one user message"))
        return
    for key, answer in (("chosen", chosen), ("rejected", rejected)):
        messages = [dict(m) if isinstance(m, dict) else m for m in prompt] + [answer]
        assign_call_ids(messages)
        probe = check_row(Row(row.line, messages, tools=row.tools), (), options)
        for error in probe.errors:
            if error.field.startswith("messages["):
                index = int(error.field[len("messages[") : error.field.index("]")])
                error.field = _field(name, len(prompt), key, index) + error.field[error.field.index("]") + 1 :]
            if key == "chosen" or error.field.startswith(key):  # the prompt's and tools' errors once
                row.errors.append(error)
    if row.errors:
        row.tools = []  # reported here: the example's own checks find nothing more to say


def _field(name: str, answer_at: int, key: str, index: int) -> str:
    return key if index >= answer_at else f"{name}[{index}]"


# --- files --------------------------------------------------------------------------------


class ParquetSource(Source):
    """The rows of a Parquet file of preference records, one line per row (1-based)."""

    def __init__(self, path: str | os.PathLike[str], options: ReadOptions) -> None:
        self.path = Path(path)
        self.options = options
        self.rows = 0
        self.done = 0

    def progress(self) -> float:
        return min(self.done / self.rows, 1.0) if self.rows else 0.0

    def __iter__(self) -> Iterator[Row]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            yield Row(
                1, errors=[RowError(1, "invalid_field", "file", _("not a Parquet file: %(detail)s") % {"detail": exc})]
            )
            return
        self.rows = parquet.metadata.num_rows
        decoded, limit = 0, self.options.max_decoded_bytes
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            decoded += batch.nbytes
            if limit is not None and decoded > limit:
                raise DecodedTooLarge(None, limit)
            for record in batch.to_pylist():
                self.done += 1
                yield row_from_record(self.done, _without_nulls(record), self.options)


def _without_nulls(value: Any) -> Any:
    """Arrow gives every message every key of the column's struct, null where a message has
    none: those keys are dropped, as a JSON file would not have them."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def read(path: str | os.PathLike[str], options: ReadOptions) -> Source:
    with open(path, "rb") as f:
        if f.read(4) == PARQUET_MAGIC:
            return ParquetSource(path, options)
    return JsonSource(path, options, row_from_record)
