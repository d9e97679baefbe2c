"""A SQL source: one read-only SELECT on a database the operator named.

The database's address is the value of one of the operator's secrets (a PostgreSQL URL, or
``sqlite:///absolute/path``), read when the query runs and never stored or shown. The admin writes
the query; it is held three ways, so that a query can only read:

- `query_clean` accepts one statement that starts with SELECT or WITH and names no statement that
  writes (INSERT, UPDATE, DELETE, ... also inside a WITH), outside strings and comments;
- the database is opened read-only: PostgreSQL in a READ ONLY transaction, SQLite through a
  ``mode=ro`` URI with ``PRAGMA query_only``;
- the query has a time limit (``statement_timeout``; SQLite: a progress handler) and a row limit.

Its columns are mapped as a CSV file's are (curation/formats/tabular.py, the same mapping option),
and each row's line is its number in the query's result.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from django.utils.translation import gettext as _

from curation.formats import tabular
from curation.formats.rows import FileRejected, ReadOptions, Row, RowError, Source
from curation.formats.textfile import too_large
from text.sql_scan import unclosed

FETCH = 500
# Statements that write, refused anywhere in a query (a WITH may hold one). Words that are also
# common column or function names (replace, set, comment) are left to the read-only transaction.
WRITES = frozenset(
    "insert update delete merge upsert drop create alter truncate grant revoke attach detach "
    "vacuum reindex pragma copy".split()
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


class QueryRefused(ValueError):
    """A query that may not run: str() says why."""


def _code_only(query: str) -> str:
    """The query without its strings, quoted names and comments (each left as a space)."""
    out: list[str] = []
    index = 0
    while index < len(query):
        char = query[index]
        if char in "'\"`":
            end = index + 1
            while True:
                end = query.find(char, end)
                if end == -1 or not query.startswith(char * 2, end):
                    break
                end += 2
            index = len(query) if end == -1 else end + 1
            out.append(" ")
            continue
        if query.startswith("--", index):
            newline = query.find("\n", index)
            index = len(query) if newline == -1 else newline
            continue
        if query.startswith("/*", index):
            end = query.find("*/", index + 2)
            index = len(query) if end == -1 else end + 2
            out.append(" ")
            continue
        out.append(char)
        index += 1
    return "".join(out)


def query_clean(query: Any) -> str:
    """The query, checked: one SELECT (or WITH ... SELECT) statement; QueryRefused otherwise."""
    text = str(query or "").strip()
    if not text:
        raise QueryRefused(_("Write a SELECT query."))
    if problem := unclosed(text):
        raise QueryRefused(_("The query leaves a %(what)s open; close it.") % {"what": problem.kind})
    code = _code_only(text).strip()
    while code.endswith(";"):
        code = code[:-1].rstrip()
    if ";" in code:
        raise QueryRefused(_("Write one statement: the query holds a ; in the middle."))
    words = [w.lower() for w in _WORD.findall(code)]
    if not words or words[0] not in ("select", "with"):
        raise QueryRefused(_("Only a SELECT query (or WITH ... SELECT) can be a source; it reads, never writes."))
    if writes := sorted(set(words) & WRITES):
        raise QueryRefused(
            _("A source's query only reads: %(words)s is not allowed in it, not even inside a WITH.")
            % {"words": ", ".join(w.upper() for w in writes)}
        )
    return text.rstrip().rstrip(";").rstrip()


@dataclass
class Result:
    """An open query: its column names and its rows, read as they are needed."""

    columns: list[str]
    rows: Iterator[tuple[Any, ...]]


def _timeout_message(seconds: float) -> str:
    return _(
        "the query ran longer than %(seconds)s seconds, the source's timeout; make it faster or raise the timeout"
    ) % {"seconds": f"{seconds:g}"}


def _failed(error: Exception, seconds: float, timed_out: bool) -> FileRejected:
    message = (
        _timeout_message(seconds)
        if timed_out
        else _("the database refused the query: %(error)s") % {"error": str(error).strip()[:500]}
    )
    return FileRejected(RowError(0, "query_failed", "query", message))


@contextmanager
def run_query(url: str, query: str, *, timeout: float) -> Iterator[Result]:
    """Run ``query`` read-only on the database at ``url``; FileRejected naming what went wrong
    (the address, the database's answer, the time limit)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        with _sqlite(url, query, timeout) as result:
            yield result
    elif scheme in ("postgres", "postgresql"):
        with _postgres(url, query, timeout) as result:
            yield result
    else:
        raise FileRejected(
            RowError(
                0,
                "query_failed",
                "secret",
                _("the secret holds no database address this can read: use postgresql://… or sqlite:///absolute/path"),
            )
        )


@contextmanager
def _sqlite(url: str, query: str, timeout: float) -> Iterator[Result]:
    path = url[len("sqlite://") :]
    # sqlite:///abs/path and sqlite:////abs/path (as DATABASE_URL writes it) both name /abs/path.
    path = "/" + path.lstrip("/") if path.startswith("/") else path
    if not path.startswith("/") or path == "/":
        raise FileRejected(
            RowError(0, "query_failed", "secret", _("a SQLite address is sqlite:///absolute/path/to/file"))
        )
    deadline = time.monotonic() + timeout
    timed_out = False

    def stop() -> int:
        nonlocal timed_out
        timed_out = time.monotonic() > deadline
        return int(timed_out)

    try:
        connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=min(timeout, 5))
    except sqlite3.Error as error:
        raise _failed(error, timeout, False) from None
    try:
        connection.execute("PRAGMA query_only = ON")
        connection.set_progress_handler(stop, 10_000)
        try:
            cursor = connection.execute(query)
        except sqlite3.Error as error:
            raise _failed(error, timeout, timed_out) from None
        columns = [str(d[0]) for d in cursor.description or ()]

        def rows() -> Iterator[tuple[Any, ...]]:
            try:
                while batch := cursor.fetchmany(FETCH):
                    yield from batch
            except sqlite3.Error as error:
                raise _failed(error, timeout, timed_out) from None

        yield Result(columns, rows())
    finally:
        connection.close()


@contextmanager
def _postgres(url: str, query: str, timeout: float) -> Iterator[Result]:
    import psycopg

    try:
        connection = psycopg.connect(url, connect_timeout=max(1, min(int(timeout), 30)), autocommit=False)
    except psycopg.Error as error:
        raise _failed(error, timeout, False) from None
    try:
        try:
            with connection.cursor() as setup:
                setup.execute("SET TRANSACTION READ ONLY")
                setup.execute("SELECT set_config('statement_timeout', %s, true)", [str(int(timeout * 1000))])
            cursor = connection.cursor(name="shikomi_source")  # a server-side cursor: rows as they are read
            cursor.itersize = FETCH
            cursor.execute(query)
            first = cursor.fetchmany(FETCH)
        except psycopg.Error as error:
            raise _failed(error, timeout, isinstance(error, psycopg.errors.QueryCanceled)) from None
        columns = [str(d.name) for d in cursor.description or ()]

        def rows() -> Iterator[tuple[Any, ...]]:
            batch = first
            try:
                while batch:
                    yield from batch
                    batch = cursor.fetchmany(FETCH)
            except psycopg.Error as error:
                raise _failed(error, timeout, isinstance(error, psycopg.errors.QueryCanceled)) from None

        yield Result(columns, rows())
    finally:
        connection.rollback()
        connection.close()


def cell(value: Any) -> str:
    """A database value as a CSV cell's text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | float | int):
        return str(value)
    return str(value)


class QueryRows(Source):
    """A query's rows as canonical rows: columns mapped as a CSV header's (the mapping option),
    the line of each its number in the result. More than ``limit`` rows stops the import."""

    def __init__(self, result: Result, options: ReadOptions, limit: int) -> None:
        self.result = result
        self.options = options
        self.limit = limit
        self.read = 0

    def progress(self) -> float:
        return min(self.read / self.limit, 1.0) if self.limit else 0.0

    def __iter__(self) -> Iterator[Row]:
        if not self.result.columns:
            raise FileRejected(RowError(0, "query_failed", "query", _("the query returns no columns")))
        columns = tabular.Columns(list(self.result.columns), self.options)  # the CSV's own mapping
        if columns.errors:
            yield Row(1, errors=columns.errors)
            return
        max_bytes = self.options.max_row_bytes
        for number, record in enumerate(self.result.rows, start=1):
            if number > self.limit:
                raise FileRejected(
                    RowError(
                        number,
                        "too_many_rows",
                        "query",
                        _(
                            "the query returns more than %(limit)d rows, the source's row limit; add a LIMIT or "
                            "a WHERE to the query, or raise the row limit"
                        )
                        % {"limit": self.limit},
                    )
                )
            self.read = number
            cells = [cell(value) for value in record]
            size = sum(len(c) for c in cells)
            if size > max_bytes:
                yield Row(number, errors=[too_large(number, size, max_bytes)])
                continue
            yield columns.row(number, cells, self.options)
