"""Paging a list by key (keyset pagination), for the examples list API.

A page is asked for by where the previous one ended, not by how many rows to skip: the
``next`` link carries the last row's sort value and id, and the database seeks to it through
the index, so the last page of 100,000 examples costs what the first does (OFFSET makes the
database walk past every skipped row). The order is the queryset's ``order_by``, which must
end with ``id`` as the tie-breaker; a nullable sort field (an example's label) sorts its
empty values first on every database. Rows added or removed while a client walks the pages
do not shift the pages after them: nothing is skipped or repeated.

``?page=N`` still answers as before (numbered pages, counted from the start), for clients
written against it; it is slower on late pages and documented as such.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F, Field, Model, OrderBy, Q, QuerySet
from django.utils.translation import gettext as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

MAX_PAGE_SIZE = 200


@dataclass(frozen=True)
class Key:
    """One column of the order: a field path (``label__name``), its direction, and whether
    it may be empty (NULL), which then sorts before every value, walking forwards."""

    path: str
    descending: bool
    nullable: bool

    def order(self, reverse: bool) -> OrderBy:
        # Empty values are the smallest: first going up, last going down.
        if self.descending != reverse:
            return F(self.path).desc(nulls_last=True) if self.nullable else F(self.path).desc()
        return F(self.path).asc(nulls_first=True) if self.nullable else F(self.path).asc()

    def beyond(self, value: Any, reverse: bool) -> Q:
        """Rows strictly after ``value`` in this column's walking direction."""
        up = self.descending == reverse
        if value is None:
            # Nothing is smaller than empty; everything with a value is larger.
            return Q(**{f"{self.path}__isnull": False}) if up else Q(pk__in=[])
        if up:
            return Q(**{f"{self.path}__gt": value})
        after = Q(**{f"{self.path}__lt": value})
        return after | Q(**{f"{self.path}__isnull": True}) if self.nullable else after

    def equal(self, value: Any) -> Q:
        return Q(**{f"{self.path}__isnull": True}) if value is None else Q(**{self.path: value})


def keys_of(queryset: QuerySet) -> list[Key]:
    """The queryset's order as keys; it must end with the primary key, which makes it total."""
    keys = []
    for term in queryset.query.order_by:
        if isinstance(term, OrderBy) and isinstance(term.expression, F):
            path, descending = term.expression.name, term.descending
        elif isinstance(term, str):
            path, descending = term.lstrip("-"), term.startswith("-")
        else:
            raise TypeError(f"keyset pagination cannot page by {term!r}")
        path = "id" if path == "pk" else path
        if any(key.path == path for key in keys):
            continue  # ordered by it already: a repeat changes nothing
        keys.append(Key(path, descending, _field(queryset.model, path)[1]))
    if not keys or keys[-1].path != "id":
        raise TypeError("keyset pagination needs an order that ends with id")
    return keys


def _field(model: type[Model], path: str) -> tuple[Field, bool]:
    """The field a path ends at, and whether its value may be empty (the field allows NULL,
    or a relation on the way does)."""
    *relations, name = path.split("__")
    nullable = False
    for relation in relations:
        step = model._meta.get_field(relation)
        nullable = nullable or step.null
        model = step.related_model
    field = model._meta.get_field(name)
    return field, nullable or field.null


def value_at(instance: Model, path: str) -> Any:
    """The row's value for a field path, following relations; None past an empty relation."""
    value: Any = instance
    for name in path.split("__"):
        value = getattr(value, name, None)
        if value is None:
            return None
    return value


def cursor_token(position: list[Any], reverse: bool = False) -> str:
    """The ``cursor`` for the rows after ``position`` (the sort values and id of a row), or
    before it when ``reverse``."""
    values = [v.isoformat() if isinstance(v, date | datetime) else v for v in position]
    text = json.dumps({"p": values, "r": int(reverse)}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class KeysetPagination(BasePagination):
    """Pages of ``page_size`` rows (``?page_size=``, at most 200) by an opaque ``cursor``;
    ``count`` is the number of rows that match, as before."""

    page_size = 50
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset: QuerySet, request: Request, view: Any = None) -> list[Model]:
        self.request, self.base_url = request, request.build_absolute_uri()
        if "page" in request.query_params and self.cursor_query_param not in request.query_params:
            self.numbered = _Numbered()
            self.numbered.page_size = self._page_size(request)
            return self.numbered.paginate_queryset(queryset, request, view)
        self.numbered = None
        size = self._page_size(request)
        keys = keys_of(queryset)
        position, reverse = self._decode(request, keys, queryset.model)
        page = queryset.order_by(*(key.order(reverse) for key in keys))
        if position is not None:
            page = page.filter(self._after(keys, position, reverse))
        rows = list(page[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        if reverse:
            rows.reverse()
        self.count = queryset.order_by().count()
        # Going forwards there is a previous page when we came from somewhere; going back,
        # a next one always (the page we came from).
        has_before, has_after = (more, position is not None) if reverse else (position is not None, more)
        self.next = self._link(keys, rows[-1], False) if rows and has_after else None
        self.previous = self._link(keys, rows[0], True) if rows and has_before else None
        if not rows and position is not None:
            # Past the end (every row after the cursor was deleted): offer the way back.
            self.previous = self._encode(position, True) if not reverse else None
            self.next = self._encode(position, False) if reverse else None
        return rows

    def get_paginated_response(self, data: Any) -> Response:
        if self.numbered is not None:
            return self.numbered.get_paginated_response(data)
        return Response({"count": self.count, "next": self.next, "previous": self.previous, "results": data})

    # --- cursors ---------------------------------------------------------------------------

    def _page_size(self, request: Request) -> int:
        given = request.query_params.get(self.page_size_query_param)
        if given in (None, ""):
            return self.page_size
        if not given.isdigit() or not 1 <= int(given) <= MAX_PAGE_SIZE:
            raise ValidationError(
                {self.page_size_query_param: [_("A whole number from 1 to %(max)d.") % {"max": MAX_PAGE_SIZE}]}
            )
        return int(given)

    @staticmethod
    def _after(keys: list[Key], position: list[Any], reverse: bool) -> Q:
        """Rows after the position in the walking order: the first key beyond it, or equal
        on the first keys and beyond on the next (the last key, id, is unique)."""
        condition = Q(pk__in=[])
        equal = Q()
        for key, value in zip(keys, position, strict=True):
            condition |= equal & key.beyond(value, reverse)
            equal &= key.equal(value)
        return condition

    def _link(self, keys: list[Key], row: Model, reverse: bool) -> str:
        return self._encode([value_at(row, key.path) for key in keys], reverse)

    def _encode(self, position: list[Any], reverse: bool) -> str:
        url = remove_query_param(self.base_url, "page")
        return replace_query_param(url, self.cursor_query_param, cursor_token(position, reverse))

    def _decode(self, request: Request, keys: list[Key], model: type[Model]) -> tuple[list[Any] | None, bool]:
        token = request.query_params.get(self.cursor_query_param)
        if not token:
            return None, False
        problem = {self.cursor_query_param: [_("Not a cursor from this list: follow the next and previous links.")]}
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            values, reverse = data["p"], bool(data["r"])
            if not isinstance(values, list) or len(values) != len(keys) or values[-1] is None:
                raise ValueError(values)
            if any(v is None and not key.nullable for key, v in zip(keys, values, strict=True)):
                raise ValueError(values)
            position = [
                None if v is None else _field(model, key.path)[0].to_python(v)
                for key, v in zip(keys, values, strict=True)
            ]
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, KeyError, DjangoValidationError):
            raise ValidationError(problem) from None
        return position, reverse

    # --- the schema ------------------------------------------------------------------------

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["count", "results"],
            "properties": {
                "count": {"type": "integer", "example": 123},
                "next": {
                    **link,
                    "example": "https://shikomi.example.org/api/projects/support/examples/?cursor=eyJwIjpbNTBdLCJyIjowfQ",
                },
                "previous": link,
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        text = {
            self.cursor_query_param: CURSOR_HELP,
            self.page_size_query_param: PAGE_SIZE_HELP,
            "page": PAGE_HELP,
        }
        kinds = {self.cursor_query_param: "string", self.page_size_query_param: "integer", "page": "integer"}
        return [
            {"name": name, "required": False, "in": "query", "description": help_, "schema": {"type": kinds[name]}}
            for name, help_ in text.items()
        ]


CURSOR_HELP = (
    "Where the page starts: take it from the `next` or `previous` link of the page before. "
    "Leave it out for the first page."
)
PAGE_SIZE_HELP = "Rows per page, 1 to 200 (50 when left out)."
PAGE_HELP = "Deprecated: a numbered page, as before cursors; late pages are slower. Follow the `next` links instead."


class _Numbered(PageNumberPagination):
    """``?page=N`` as it always answered."""
