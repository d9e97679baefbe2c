"""File formats of examples: each module reads its format into canonical rows and writes
canonical rows back out. Plain Python: no database access in this package.

The canonical example is OpenAI's chat shape (a list of {role, content}) with a label, a
split and metadata; see rows.Row.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

from curation.formats import alpaca, hf, openai, prompt_completion, sharegpt, tabular
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

IMPORT_FORMATS = ("openai", "alpaca", "sharegpt", "prompt_completion", "csv", "tsv", "hf")
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


@dataclass(frozen=True)
class ExportFormat:
    content_type: str
    extension: str
    write: Callable[..., Iterator[bytes]]
    # Opened in spreadsheets, which run cells that start with "=" as formulas.
    spreadsheet: bool = False

    def __call__(
        self, rows: Iterable[ExportRow], *, classification: bool = False, raw_formulas: bool = False
    ) -> Iterator[bytes]:
        if self.spreadsheet:
            return self.write(rows, classification=classification, raw_formulas=raw_formulas)
        return self.write(rows, classification=classification)


EXPORT_FORMATS: dict[str, ExportFormat] = {
    "openai": ExportFormat(openai.CONTENT_TYPE, openai.EXTENSION, openai.write),
    "alpaca": ExportFormat(alpaca.CONTENT_TYPE, alpaca.EXTENSION, alpaca.write),
    "sharegpt": ExportFormat(sharegpt.CONTENT_TYPE, sharegpt.EXTENSION, sharegpt.write),
    "prompt_completion": ExportFormat(
        prompt_completion.CONTENT_TYPE, prompt_completion.EXTENSION, prompt_completion.write
    ),
    "csv": ExportFormat(tabular.CONTENT_TYPE, "csv", tabular.write, spreadsheet=True),
    "tsv": ExportFormat(tabular.TSV_CONTENT_TYPE, "tsv", tabular.write_tsv, spreadsheet=True),
    "parquet": ExportFormat(hf.CONTENT_TYPE, hf.EXTENSION, hf.write),
}


def export_format(name: str) -> ExportFormat | None:
    return EXPORT_FORMATS.get(name)
