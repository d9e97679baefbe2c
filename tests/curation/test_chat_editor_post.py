"""The chat editor's form keeps every part of the canonical conversation (docs/data-model.md):
tool calls, tool results' ids, reasoning, weights and other keys come back from a save as they
went out; what the checks refuse names the turn and field, and nothing is saved."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from django.http import QueryDict

from curation.core.forms import field_in_words, messages_from_post
from curation.core.services import example_create
from curation.models import Example, ExampleRevision
from tests.conftest import PASSWORD

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALLING = [
    {"role": "system", "content": "\nYou answer briefly.", "name": "house-style"},
    {"role": "user", "content": "京都の天気は？\nお願いします"},
    {
        "role": "assistant",
        "content": "",
        "reasoning": "The user wants the weather in Kyoto; call get_weather.",
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "京都"}'}}
        ],
        "weight": 0,
    },
    {"role": "tool", "content": '{"sky": "晴れ"}', "tool_call_id": "call_0"},
    {"role": "assistant", "content": "晴れです。<b>&amp;</b>", "weight": 1},
]


class _Fields(HTMLParser):
    """The fields one form sends, as a browser without JavaScript would send them."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.fields = form_id, False, []
        self._template = 0  # inside a <template>: not part of the form until JavaScript adds it
        self._textarea: str | None = None
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        self._template += tag == "template"
        if not self.inside or self._template:
            return
        if tag == "input" and a.get("name") and (a.get("type") not in ("checkbox", "radio") or "checked" in a):
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea, self._text = a["name"], ""
        elif tag == "select" and a.get("name"):
            self._select, self._options = a["name"], []
        elif tag == "option" and self._select:
            self._options.append((a.get("value", ""), "selected" in a))

    def handle_data(self, data):
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag):
        self._template -= tag == "template"
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self._textarea is not None:
            text = self._text[1:] if self._text.startswith("\n") else self._text  # as browsers do
            self.fields.append((self._textarea, text.replace("\n", "\r\n")))  # and sent as CRLF
            self._textarea = None
        elif tag == "select" and self._select:
            chosen = [v for v, selected in self._options if selected] or [v for v, _ in self._options[:1]]
            self.fields.append((self._select, chosen[0] if chosen else ""))
            self._select = None


def form_fields(html: str, form_id: str) -> list[tuple[str, str]]:
    parser = _Fields(form_id)
    parser.feed(html)
    return parser.fields


def as_post(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return data


def query(fields: list[tuple[str, str]]) -> QueryDict:
    data = QueryDict(mutable=True)
    for name, value in fields:
        data.appendlist(name, value)
    return data


@pytest.fixture
def calling(project, users) -> Example:
    return example_create(project=project, user=users["annotator"], messages=CALLING, tools=[WEATHER])


@pytest.fixture
def annie(client, users):
    client.login(username="annie", password=PASSWORD)
    return client


def edit_page(client, project, example) -> list[tuple[str, str]]:
    html = client.get(f"/p/{project.slug}/examples/{example.pk}/").content.decode()
    return form_fields(html, "edit-form")


def replace(fields, name: str, index: int, value: str) -> list[tuple[str, str]]:
    """The fields with the index-th value of ``name`` replaced."""
    seen, out = -1, []
    for field, old in fields:
        if field == name:
            seen += 1
            if seen == index:
                old = value
        out.append((field, old))
    return out


def test_the_rendered_editor_reads_back_as_the_same_conversation(annie, project, calling):
    fields = edit_page(annie, project, calling)

    assert messages_from_post(query(fields)) == CALLING


def test_saving_an_untouched_tool_call_example_makes_no_new_version(annie, project, calling):
    response = annie.post(f"/p/{project.slug}/examples/{calling.pk}/edit/", as_post(edit_page(annie, project, calling)))

    assert response.status_code == 302
    calling.refresh_from_db()
    assert calling.version == 1 and calling.messages == CALLING
    assert ExampleRevision.objects.filter(example=calling).count() == 1


def test_an_edit_of_one_text_keeps_the_calls_results_reasoning_and_weights(annie, project, calling):
    fields = replace(edit_page(annie, project, calling), "content", 4, "It is sunny.")

    assert annie.post(f"/p/{project.slug}/examples/{calling.pk}/edit/", as_post(fields)).status_code == 302

    calling.refresh_from_db()
    assert calling.version == 2
    assert calling.messages == [*CALLING[:4], {"role": "assistant", "content": "It is sunny.", "weight": 1}]


def test_the_editor_fields_make_canonical_messages_with_only_the_keys_that_are_set():
    calls = [{"id": "call_7", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]
    data = query(
        [
            *[("role", r) for r in ("user", "assistant", "tool", "assistant")],
            *[("content", c) for c in ("Hi\r\nthere", "", "rain", "Rain.")],
            *[("reasoning", r) for r in ("", "Look it up.\r\nThen answer.", "", "  ")],
            *[("weight", w) for w in ("", "", "", "0")],
            *[("tool_call_id", i) for i in ("", "", "call_7", "")],
            *[("tool_calls", c) for c in ("", json.dumps(calls), "", "")],
            *[("extra", e) for e in ('{"name": "kim"}', "", "", "")],
        ]
    )

    assert messages_from_post(data) == [
        {"role": "user", "content": "Hi\nthere", "name": "kim"},
        {"role": "assistant", "content": "", "reasoning": "Look it up.\nThen answer.", "tool_calls": calls},
        {"role": "tool", "content": "rain", "tool_call_id": "call_7"},
        {"role": "assistant", "content": "Rain.", "weight": 0},
    ]


def test_an_old_form_with_role_and_content_alone_still_reads():
    data = query([("role", "user"), ("role", "assistant"), ("content", "Q"), ("content", "A")])

    assert messages_from_post(data) == [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]


def _tool_calls(fields, arguments: str, name: str = "get_weather") -> list[tuple[str, str]]:
    call = [{"id": "call_0", "type": "function", "function": {"name": name, "arguments": arguments}}]
    return replace(fields, "tool_calls", 2, json.dumps(call))


@pytest.mark.parametrize(
    "arguments,name,where,says",
    [
        ('{"city": 5}', "get_weather", "Turn 3, call 1, arguments", "$.city: 5 is not of type &#x27;string&#x27;"),
        ("{}", "get_weather", "Turn 3, call 1, arguments", "$: &#x27;city&#x27; is a required property"),
        ('{"city": "京都"', "get_weather", "Turn 3, call 1, arguments", "not valid JSON"),
        ('{"city": "京都"}', "get_time", "Turn 3, call 1, function", "unknown function &quot;get_time&quot;"),
    ],
)
def test_a_bad_call_is_refused_naming_the_turn_and_field_and_nothing_is_saved(
    annie, project, calling, arguments, name, where, says
):
    fields = _tool_calls(edit_page(annie, project, calling), arguments, name)

    response = annie.post(f"/p/{project.slug}/examples/{calling.pk}/edit/", as_post(fields))

    assert response.status_code == 400
    html = response.content.decode()
    assert f"{where}: " in html and says in html
    calling.refresh_from_db()
    assert calling.version == 1 and calling.messages == CALLING


def test_a_tool_result_without_its_call_id_is_refused_naming_the_turn(annie, project, calling):
    fields = replace(edit_page(annie, project, calling), "tool_call_id", 3, "")

    response = annie.post(f"/p/{project.slug}/examples/{calling.pk}/edit/", as_post(fields))

    assert response.status_code == 400
    assert "Turn 4, answers call: no tool_call_id" in response.content.decode()
    calling.refresh_from_db()
    assert calling.version == 1


def test_the_page_shows_a_stored_schema_error_next_to_its_call(annie, project, users):
    broken = [*CALLING[:2], {**CALLING[2], "tool_calls": [{**CALLING[2]["tool_calls"][0]}]}, *CALLING[3:]]
    broken[2]["tool_calls"][0]["function"] = {"name": "get_weather", "arguments": '{"town": "Nara"}'}
    example = example_create(project=project, user=users["annotator"], messages=broken, tools=[WEATHER])

    html = annie.get(f"/p/{project.slug}/examples/{example.pk}/").content.decode()

    assert 'aria-invalid="true"' in html and "$: &#x27;city&#x27; is a required property" in html


def test_an_annotator_submitting_a_schema_invalid_call_is_refused_and_keeps_a_draft(annie, project, calling):
    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    fields = _tool_calls(form_fields(html, "label-form"), '{"city": ["Kyoto"]}')

    response = annie.post(f"/p/{project.slug}/label/{calling.pk}/submit/", as_post(fields))

    assert response.status_code == 400
    assert "Turn 3, call 1, arguments: $.city" in response.content.decode()
    calling.refresh_from_db()
    assert calling.version == 1 and calling.messages == CALLING


def test_an_annotator_submitting_the_calls_untouched_changes_nothing_but_the_label(annie, project, calling):
    html = annie.get(f"/p/{project.slug}/label/").content.decode()
    fields = [*form_fields(html, "label-form"), ("label", "billing")]

    assert annie.post(f"/p/{project.slug}/label/{calling.pk}/submit/", as_post(fields)).status_code == 302

    calling.refresh_from_db()
    assert calling.label.name == "billing" and calling.messages == CALLING


@pytest.mark.parametrize(
    "field,words",
    [
        ("messages[2].tool_calls[0].function.arguments", "Turn 3, call 1, arguments"),
        ("messages[0].tool_calls[1].function.name", "Turn 1, call 2, function"),
        ("messages[4].tool_call_id", "Turn 5, answers call"),
        ("messages[1].name", "Turn 2, name"),
        ("messages[1].content", "Turn 2, content"),
        ("label", "label"),
    ],
)
def test_a_field_path_reads_as_words(field, words):
    assert field_in_words(field) == words
