"""File formats of examples: each module reads its format into canonical rows and writes
canonical rows back out. Plain Python: no database access in this package.

The canonical example is OpenAI's chat shape (a list of {role, content}) with a label, a
split and metadata; see rows.Row.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from curation.formats import alpaca, hf, openai, preference, prompt_completion, sharegpt, tabular
from curation.formats.checks import check_row
from curation.formats.rows import ExportRow, ReadOptions, Row, RowError, Source

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "ExportFormat",
    "ExportRow",
    "ReadOptions",
    "Row",
    "RowError",
    "Source",
    "export_format",
    "read",
]

IMPORT_FORMATS = ("openai", "alpaca", "sharegpt", "prompt_completion", "csv", "tsv", "hf", "preference")
# Other names people use for the same thing.
IMPORT_ALIASES = {"parquet": "hf", "jsonl": "openai"}


def _reader(format: str) -> Callable[[str | os.PathLike[str], ReadOptions], Source]:
    if format == "csv":
        return lambda path, options: tabular.read(path, options, ",")
    if format == "tsv":
        return lambda path, options: tabular.read(path, options, "\t")
    return {
        "openai": openai.read,
        "alpaca": alpaca.read,
        "sharegpt": sharegpt.read,
        "prompt_completion": prompt_completion.read,
        "hf": hf.read,
        "preference": preference.read,
    }[format]


class CheckedSource(Source):
    """A format's rows, each checked against the canonical rules and the project's labels."""

    def __init__(self, inner: Source, labels: Collection[str], options: ReadOptions) -> None:
        self.inner = inner
        self.labels = labels
        self.options = options
        self.encoding = inner.encoding

    def __iter__(self) -> Iterator[Row]:
        labels, options = self.labels, self.options
        for row in self.inner:
            yield check_row(row, labels, options)

    def progress(self) -> float:
        return self.inner.progress()


def read(path: str | os.PathLike[str], format: str, options: ReadOptions, labels: Collection[str]) -> CheckedSource:
    """Rows of the file at ``path``, in order, with their errors. ``format`` must be known."""
    format = IMPORT_ALIASES.get(format, format)
    return CheckedSource(_reader(format)(path, options), labels, options)


def _holds(module: Any) -> Callable[..., str | None] | None:
    """A format module's ``cannot_hold(row)``, called with the project's kind when it takes it."""
    cannot_hold = getattr(module, "cannot_hold", None)
    if cannot_hold is None:
        return None
    if "classification" in inspect.signature(cannot_hold).parameters:
        return cannot_hold
    return lambda row, *, classification=False: cannot_hold(row)


@dataclass(frozen=True)
class ExportFormat:
    content_type: str
    extension: str
    write: Callable[..., Iterator[bytes]]
    # Opened in spreadsheets, which run cells that start with "=" as formulas.
    spreadsheet: bool = False
    # Why the format cannot hold an example (a short translated reason), None when it can; a
    # format that holds every example has none. Its writer leaves such examples out.
    holds: Callable[..., str | None] | None = None

    def __call__(
        self,
        rows: Iterable[ExportRow],
        *,
        classification: bool = False,
        raw_formulas: bool = False,
        shikomi_fields: bool = False,
    ) -> Iterator[bytes]:
        if self.holds is not None:  # examples the format cannot hold are left out, never half-written
            rows = (row for row in rows if self.holds(row, classification=classification) is None)
        options: dict[str, bool] = {"classification": classification}
        if self.spreadsheet:
            options["raw_formulas"] = raw_formulas
        if self.takes_shikomi_fields:
            options["shikomi_fields"] = shikomi_fields
        return self.write(rows, **options)

    @property
    def takes_shikomi_fields(self) -> bool:
        return "shikomi_fields" in inspect.signature(self.write).parameters

    def cannot_hold(self, row: ExportRow, *, classification: bool = False) -> str | None:
        """Why this format cannot hold ``row`` (docs/data-model.md), or None."""
        return None if self.holds is None else self.holds(row, classification=classification)


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "openai": ExportFormat(openai.CONTENT_TYPE, openai.EXTENSION, openai.write, holds=_holds(openai)),
    "alpaca": ExportFormat(alpaca.CONTENT_TYPE, alpaca.EXTENSION, alpaca.write, holds=alpaca.cannot_hold),
    "sharegpt": ExportFormat(sharegpt.CONTENT_TYPE, sharegpt.EXTENSION, sharegpt.write, holds=_holds(sharegpt)),
    "prompt_completion": ExportFormat(
        prompt_completion.CONTENT_TYPE,
        prompt_completion.EXTENSION,
        prompt_completion.write,
        holds=prompt_completion.cannot_hold,
    ),
    "csv": ExportFormat(tabular.CONTENT_TYPE, "csv", tabular.write, spreadsheet=True, holds=tabular.cannot_hold),
    "tsv": ExportFormat(
        tabular.TSV_CONTENT_TYPE, "tsv", tabular.write_tsv, spreadsheet=True, holds=tabular.cannot_hold
    ),
    "parquet": ExportFormat(hf.CONTENT_TYPE, hf.EXTENSION, hf.write),
}


def export_format(name: str) -> ExportFormat | None:
    return EXPORT_FORMATS.get(name)
