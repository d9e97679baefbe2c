"""What a piece of SQL leaves open: a quote, a comment or a parenthesis.

sqlparse parses almost anything, an unclosed quote included, so this walks the text itself,
skipping strings, quoted names and comments, where parentheses and other quotes don't count.
Plain Python (no Django): the format check (curation/quality/formats.py) words the finding for
people, the evaluation metrics (training/evaluation/metrics.py) only need to know whether there
is one.
"""

from __future__ import annotations

from typing import NamedTuple


class Unclosed(NamedTuple):
    """`kind` is "quote" (`detail` the quote character), "comment" (an open /*), "extra_close" (a )
    that closes nothing) or "parentheses" (`detail` how many are never closed)."""

    kind: str
    detail: str | int = ""


def unclosed(sql: str) -> Unclosed | None:
    """The first thing `sql` leaves open, or None when everything is closed."""
    depth = 0
    index = 0
    while index < len(sql):
        char = sql[index]
        if char in "'\"`":
            end = index + 1
            while True:
                end = sql.find(char, end)
                if end == -1:
                    return Unclosed("quote", char)
                if sql.startswith(char * 2, end):  # a doubled quote stands for the quote itself
                    end += 2
                    continue
                break
            index = end + 1
            continue
        if sql.startswith("--", index):
            newline = sql.find("\n", index)
            index = len(sql) if newline == -1 else newline + 1
            continue
        if sql.startswith("/*", index):
            end = sql.find("*/", index + 2)
            if end == -1:
                return Unclosed("comment")
            index = end + 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return Unclosed("extra_close")
        index += 1
    return Unclosed("parentheses", depth) if depth else None
