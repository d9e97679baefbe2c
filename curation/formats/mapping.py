"""Column mapping: which key or column of a file holds each canonical field.

A mapping is {field: column}, given as text as ``text=question,label=category``. A text field
may join several columns, ``instruction=title+body``: their texts are joined with a blank line
(empty ones are left out); a column whose own name holds a ``+`` is taken whole. Fields the
mapping does not name are read under their own names; a key of the file that has the name of a
mapped field is kept in metadata instead. Each format takes the fields of its shape
(``FIELDS``), and every JSON format takes ``text`` (with ``label``): a classification text,
one user turn.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from curation.formats.conversation import take_shikomi_fields
from curation.formats.rows import Row, RowError, describe, extras_into_metadata

JOINER = "\n\n"
# Fields whose value is text, which may join several columns.
TEXT_FIELDS = ("text", "instruction", "input", "output", "system", "prompt", "completion")
_COMMON = ("text", "label", "split", "metadata")
_TABULAR = ("text", "label", "instruction", "input", "output", "system", "split")
FIELDS: dict[str, tuple[str, ...]] = {
    "openai": ("messages", "tools", *_COMMON),
    "sharegpt": ("conversations", "system", "tools", *_COMMON),
    "alpaca": ("instruction", "input", "output", "system", "history", *_COMMON),
    "prompt_completion": ("prompt", "completion", *_COMMON),
    "csv": _TABULAR,
    "tsv": _TABULAR,
}
FIELDS["hf"] = tuple(dict.fromkeys(f for fields in FIELDS.values() for f in fields))

Mapping = dict[str, Any]  # field -> a column name, or a list of column names to join


def columns_of(field: str, value: str | list[str], available: Any) -> list[str]:
    """The columns a mapping value names: a list as it is; a name found in ``available`` whole;
    else, for a text field, the parts of ``a+b``."""
    if isinstance(value, list):
        return value
    if value in available or "+" not in value or field not in TEXT_FIELDS:
        return [value]
    return [part.strip() for part in value.split("+")]


def names(columns: Any) -> str:
    return ", ".join(f'"{name}"' for name in columns)


def missing_column(line: int, field: str, missing: list[str], found: Any, where: str = "record") -> RowError:
    values = {"columns": names(missing), "field": field, "found": names(found) or _("none")}
    if where == "record":
        message = _("%(columns)s (mapped to %(field)s) is not in this record; its keys are: %(found)s") % values
    else:
        message = _("%(columns)s (mapped to %(field)s) is not in the file; its columns are: %(found)s") % values
    return RowError(line, "missing_column", field, message)


def no_label(found: Any) -> RowError:
    """A classification project's file with no label column: nothing is imported."""
    return RowError(
        1,
        "missing_column",
        "label",
        _(
            "the project classifies texts, but the file has no label column; its columns are: %(found)s; "
            'name the label column with the mapping option (label=COLUMN), or add an empty "label" '
            "column to import the texts without labels"
        )
        % {"found": names(found) or _("none")},
    )


def join(parts: list[str]) -> str:
    return JOINER.join(part for part in parts if part.strip())


class Mapper:
    """Applies a mapping to the records of a JSON file or a dataset (dicts)."""

    def __init__(self, mapping: Mapping | None) -> None:
        self.mapping = mapping or {}

    def has(self, field: str, record: dict[str, Any]) -> bool:
        """Whether the record has ``field`` once mapped (a column, not a value: null counts)."""
        value = self.mapping.get(field)
        if value is None:
            return field in record
        return all(column in record for column in columns_of(field, value, record))

    def apply(self, line: int, record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[RowError]]:
        """(the record under canonical names, the keys it displaced, errors)."""
        if not self.mapping:
            return record, {}, []
        used: set[str] = set()
        values: dict[str, Any] = {}
        errors: list[RowError] = []
        for field, value in self.mapping.items():
            columns = columns_of(field, value, record)
            used.update(columns)
            if missing := [c for c in columns if c not in record]:
                errors.append(missing_column(line, field, missing, record))
            elif len(columns) == 1:
                values[field] = record[columns[0]]
            else:
                values[field] = self._joined(line, field, [(c, record[c]) for c in columns], errors)
        out: dict[str, Any] = {}
        displaced: dict[str, Any] = {}
        for key, value in record.items():
            if key in used:
                continue
            (displaced if key in values else out)[key] = value
        out.update(values)
        return out, displaced, errors

    @staticmethod
    def _joined(line: int, field: str, cells: list[tuple[str, Any]], errors: list[RowError]) -> str | None:
        parts = []
        for column, value in cells:
            if value is None:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                message = _('"%(column)s" (joined into %(field)s): expected text, found %(found)s') % {
                    "column": column,
                    "field": field,
                    "found": describe(value),
                }
                errors.append(RowError(line, "invalid_field", field, message))
                return None
            parts.append(value)
        return join(parts)

    def convert(self, convert: Any, line: int, record: dict[str, Any], options: Any) -> Row:
        """``convert`` (a format's record reader) on the mapped record."""
        mapped, displaced, errors = self.apply(line, record)
        if errors:
            return Row(line, errors=errors)
        row = convert(line, mapped, options)
        if displaced and isinstance(row.metadata, dict):
            metadata = dict(row.metadata)
            for key, value in displaced.items():
                if key in metadata:
                    metadata.setdefault("_extra", {})[key] = value
                else:
                    metadata[key] = value
            row.metadata = metadata
        return row

    def mapped_names(self, columns: list[str]) -> list[str]:
        """A dataset's columns once mapped."""
        used = {c for field, value in self.mapping.items() for c in columns_of(field, value, columns)}
        return [c for c in columns if c not in used and c not in self.mapping] + list(self.mapping)


TEXT_KEYS = frozenset(("text", "label", "split", "metadata"))


def text_row(line: int, record: dict[str, Any], options: Any) -> Row:
    """A classification text: {"text", "label"?} read as one user turn."""
    row = Row(line, None, record.get("label"), record.get("split"))
    extras_into_metadata(record, TEXT_KEYS | take_shikomi_fields(record, row), row)
    row.chat = False
    text = record.get("text")
    if not isinstance(text, str):
        return row.error("invalid_field", "text", _("expected text, found %(found)s") % {"found": describe(text)})
    if not text.strip():
        return row.error("empty_content", "text", _('"text" is empty; write its text'))
    row.messages = [{"role": "user", "content": text}]
    return row
