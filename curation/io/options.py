"""The options of an import, checked against its format: the same for the page, the API and
manage.py import_examples. An option a format does not take is refused, never ignored."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from curation import formats
from curation.core.services import InvalidExample
from curation.formats.mapping import FIELDS, TEXT_FIELDS
from curation.formats.rows import SPLIT_ALIASES, SPLITS
from curation.formats.textfile import is_known_encoding

OPTION_NAMES = ("encoding", "mapping", "skip_bad_rows", "delimiter", "split")


def import_options_clean(format: str, options: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The format's canonical name and the options, checked and normalised for storing."""
    name = formats.IMPORT_ALIASES.get(format, format)
    if name not in formats.IMPORT_FORMATS:
        raise InvalidExample(
            "format",
            _('unknown format "%(format)s"; expected one of %(formats)s')
            % {"format": format, "formats": ", ".join(formats.IMPORT_FORMATS)},
        )
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidExample("options", _("expected an object of options"))
    clean: dict[str, Any] = {}
    for key, value in options.items():
        if key not in OPTION_NAMES:
            raise InvalidExample(
                key,
                _('unknown option "%(option)s"; expected one of %(options)s')
                % {"option": key, "options": ", ".join(OPTION_NAMES)},
            )
        if value is None or value == "" or value == {}:
            continue  # forms and the API send empty values for options not chosen
        clean[key] = _clean_option(name, key, value)
    return name, clean


def _clean_option(format: str, key: str, value: Any) -> Any:
    if key == "encoding":
        if not isinstance(value, str) or not (value == "auto" or is_known_encoding(value)):
            raise InvalidExample(
                "encoding",
                _('unknown encoding "%(encoding)s"; try auto, utf-8, utf-16 or cp932') % {"encoding": value},
            )
        if format == "hf" and value != "auto":
            raise InvalidExample(
                "encoding", _("a Hugging Face dataset or Parquet file is binary: it takes no encoding")
            )
        return value
    if key == "skip_bad_rows":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise InvalidExample("skip_bad_rows", _("expected true or false"))
    if key == "split":
        split = SPLIT_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None
        if split is None:
            raise InvalidExample(
                "split",
                _('unknown split "%(split)s"; expected one of %(splits)s')
                % {"split": value, "splits": ", ".join((*SPLITS, "unassigned"))},
            )
        return split
    if key == "delimiter":
        if format not in ("csv", "tsv"):
            raise InvalidExample(key, _("only CSV and TSV imports take a delimiter"))
        value = {"tab": "\t", "\\t": "\t"}.get(value, value)
        if not isinstance(value, str) or len(value) != 1 or value in '"\r\n':
            raise InvalidExample("delimiter", _("expected one character, such as , or ; or tab"))
        return value
    return mapping_clean(value, format)


def mapping_clean(value: Any, format: str = "csv") -> dict[str, Any]:
    """A column mapping for ``format``, from a dict or from text such as
    "text=Body,label=Category" or "instruction=Title+Body" (see curation/formats/mapping.py)."""
    if isinstance(value, str):
        pairs = [p for p in value.split(",") if p.strip()]
        if not all("=" in p for p in pairs):
            raise InvalidExample(
                "mapping", _("expected field=column pairs separated by commas, such as text=Body,label=Category")
            )
        value = {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}
    if not isinstance(value, dict):
        raise InvalidExample("mapping", _('expected an object such as {"text": "Body", "label": "Category"}'))
    fields = FIELDS.get(format)
    if fields is None:
        raise InvalidExample(
            "mapping", _("the %(format)s format reads its own fields; it takes no column mapping") % {"format": format}
        )
    clean: dict[str, Any] = {}
    for key, column in value.items():
        if key not in fields:
            raise InvalidExample(
                "mapping",
                _('the %(format)s format has no field "%(field)s"; a column can be mapped to %(fields)s')
                % {"format": format, "field": key, "fields": ", ".join(fields)},
            )
        clean[key] = _mapped_columns(key, column)
    if "text" in clean and "instruction" in clean:
        raise InvalidExample("mapping", _("map a column to text or to instruction, not both"))
    return clean


def _mapped_columns(field: str, column: Any) -> str | list[str]:
    """A column name, or for a text field a list of names to join."""
    if isinstance(column, list) and len(column) == 1:
        column = column[0]
    if isinstance(column, list) and field in TEXT_FIELDS and len(column) > 1:
        if all(isinstance(c, str) and c.strip() for c in column):
            return [c.strip() for c in column]
    elif isinstance(column, list):
        raise InvalidExample(
            "mapping",
            _("only text fields (%(fields)s) can join several columns") % {"fields": ", ".join(TEXT_FIELDS)},
        )
    if not isinstance(column, str) or not column.strip():
        raise InvalidExample("mapping", _("the column for %(field)s must be a column name") % {"field": field})
    if field in TEXT_FIELDS and "+" in column and not all(p.strip() for p in column.split("+")):
        raise InvalidExample(
            "mapping",
            _("%(field)s=%(columns)s: a column name is missing around a +") % {"field": field, "columns": column},
        )
    return column.strip()
