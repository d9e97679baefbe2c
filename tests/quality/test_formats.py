from __future__ import annotations

import pytest

from curation.quality.formats import check_chat, check_schema, check_structured, usual_system_prompt

PRICE_SCHEMA = {
    "type": "object",
    "properties": {
        "price": {"type": "number"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"qty": {"type": "integer"}}}},
    },
    "required": ["price"],
}


def chat(*answers: str, system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system is not None else []
    for number, answer in enumerate(answers, start=1):
        messages += [{"role": "user", "content": f"question {number}"}, {"role": "assistant", "content": answer}]
    return messages


# JSON


def test_valid_json_answers_pass() -> None:
    assert check_structured(chat('{"price": 3.5}', "[1, 2, 3]")) == []


def test_a_truncated_json_object_is_reported_as_cut_off() -> None:
    for truncated in ('{"price": 3, "items": [', '{"price": 3', '{"price": 3, "na'):
        assert check_structured(chat(truncated)) == ["answer 1 is cut off: the JSON ends before it is complete"]


def test_broken_json_names_the_answer_and_the_position() -> None:
    findings = check_structured(chat('{"price": 1}', '{"price": 1,}'))

    assert findings == [
        "answer 2 is not valid JSON: Expecting property name enclosed in double quotes (line 1, column 13)"
    ]


def test_prose_around_json_is_invalid() -> None:
    assert check_structured(chat('Sure! {"price": 1}'))[0].startswith("answer 1 is not valid JSON")
    assert check_structured(chat('{"price": 1} Hope this helps!')) == [
        "answer 1 has text after the JSON (line 1, column 14)"
    ]


def test_nan_is_not_json() -> None:
    assert check_structured(chat('{"price": NaN}')) == ["answer 1 is not valid JSON: NaN is not allowed"]


def test_one_fenced_json_block_is_tolerated_silently() -> None:
    assert check_structured(chat('```json\n{"price": 1}\n```', '```\n{"price": 2}\n```'), schema=PRICE_SCHEMA) == []


def test_two_fenced_blocks_are_not_json() -> None:
    answer = '```json\n{"price": 1}\n```\n```json\n{"price": 2}\n```'

    assert check_structured(chat(answer))[0].startswith("answer 1 is not valid JSON")


def test_an_empty_answer_is_reported() -> None:
    assert check_structured(chat("  ")) == ["answer 1 is empty"]


def test_schema_violations_name_the_json_path() -> None:
    answers = chat('{"price": "abc"}', '{"price": 1, "items": [{"qty": 1}, {"qty": "two"}]}', "{}")

    assert check_structured(answers, schema=PRICE_SCHEMA) == [
        "answer 1: $.price: 'abc' is not of type 'number'",
        "answer 2: $.items[1].qty: 'two' is not of type 'integer'",
        "answer 3: $: 'price' is a required property",
    ]


def test_only_the_first_few_schema_errors_are_listed() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    answer = '{"a": "x", "b": "x", "c": "x", "d": "x", "e": "x"}'

    findings = check_structured(chat(answer), schema=schema)

    assert findings[:3] == [f"answer 1: $.{key}: 'x' is not of type 'integer'" for key in "abc"]
    assert findings[3] == "answer 1: 2 more schema errors"


def test_schema_formats_are_checked() -> None:
    schema = {"type": "object", "properties": {"due": {"type": "string", "format": "date"}}}

    assert check_structured(chat('{"due": "2024-05-01"}'), schema=schema) == []
    assert check_structured(chat('{"due": "next Friday"}'), schema=schema) == [
        "answer 1: $.due: 'next Friday' is not a 'date'"
    ]


def test_user_messages_are_not_checked() -> None:
    messages = [{"role": "user", "content": "not json at all"}, {"role": "assistant", "content": "{}"}]

    assert check_structured(messages) == []


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="yaml"):
        check_structured(chat("a: 1"), format="yaml")


# SQL


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name, price FROM products WHERE price > 10 ORDER BY price;",
        "INSERT INTO orders (id, note) VALUES (1, 'it''s late (again)')",
        "WITH recent AS (SELECT * FROM orders) SELECT count(*) FROM recent",
        'SELECT "weird (name" FROM t -- a comment with ( in it',
        "UPDATE t SET a = 1; DELETE FROM t WHERE a = 2;",
        "```sql\nSELECT 1\n```",
        "EXPLAIN SELECT 1",
    ],
)
def test_valid_sql_passes(sql: str) -> None:
    assert check_structured(chat(sql), format="sql") == []


@pytest.mark.parametrize(
    ("sql", "finding"),
    [
        ("I think you should look at the orders table.", "answer 1 is not SQL: it starts with “I think"),
        ("Sure! SELECT * FROM t", "answer 1 is not SQL: it starts with “Sure! SELECT * FROM t”"),
        ("SELECT * FROM t WHERE name = 'Tanaka", "answer 1: a ' quote is never closed"),
        ("SELECT count(* FROM t", "answer 1: 1 parenthesis is never closed"),
        ("SELECT a) FROM t", "answer 1: a ) closes a parenthesis that was never opened"),
        ("SELECT 1 /* unfinished", "answer 1: a /* comment is never closed"),
        (";", "answer 1 holds no SQL statement"),
    ],
)
def test_broken_sql_is_reported(sql: str, finding: str) -> None:
    findings = check_structured(chat(sql), format="sql")

    assert len(findings) == 1
    assert findings[0].startswith(finding)


def test_a_bad_sql_answer_is_named_among_good_ones() -> None:
    findings = check_structured(chat("SELECT 1", "SELECT (1", "SELECT 2"), format="sql")

    assert findings == ["answer 2: 1 parenthesis is never closed"]


# The schema itself


def test_a_valid_schema_has_no_findings() -> None:
    assert check_schema(PRICE_SCHEMA) == []
    assert check_schema({"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"}) == []


def test_an_invalid_schema_says_where() -> None:
    findings = check_schema({"type": "object", "properties": {"a": {"minLength": -1}}, "required": "a"})

    assert findings == [
        "The schema is not valid at $.properties.a.minLength: -1 is less than the minimum of 0",
        "The schema is not valid at $.required: 'a' is not of type 'array'",
    ]


def test_a_schema_must_be_an_object() -> None:
    assert check_schema(["type", "object"]) == ["The schema must be a JSON object, not list."]


def test_references_inside_the_schema_are_fine() -> None:
    schema = {"$defs": {"price": {"type": "number"}}, "properties": {"total": {"$ref": "#/$defs/price"}}}

    assert check_schema(schema) == []
    assert check_structured(chat('{"total": "ten"}'), schema=schema) == [
        "answer 1: $.total: 'ten' is not of type 'number'"
    ]


def test_references_that_cannot_resolve_are_reported() -> None:
    assert check_schema({"$ref": "https://example.com/order.json"}) == [
        "The schema refers to https://example.com/order.json, which is never downloaded; copy that definition "
        "into the schema's $defs and refer to it as #/$defs/NAME."
    ]
    assert check_schema({"properties": {"a": {"$ref": "#/$defs/missing"}}}) == [
        "The schema refers to #/$defs/missing, which is not in the schema."
    ]


def test_an_unresolvable_reference_is_a_finding_not_a_crash() -> None:
    findings = check_structured(chat("{}"), schema={"$ref": "https://example.com/order.json"})

    assert findings == ["answer 1: the schema's reference https://example.com/order.json cannot be resolved"]
    assert check_structured(chat("{}"), schema={"$ref": "#"}) == ["answer 1: the schema refers to itself without end"]


# Chat structure


def test_a_well_formed_chat_has_no_findings() -> None:
    assert check_chat(chat("a1", "a2", system="Be brief.")) == []
    assert check_chat(chat("a1")) == []


def test_the_chat_must_start_with_the_user() -> None:
    messages = [{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Hi"}]

    assert "message 1 is the assistant's, but the conversation must start with the user's" in check_chat(messages)


def test_the_chat_must_end_with_the_assistant() -> None:
    messages = chat("a1") + [{"role": "user", "content": "and?"}]

    assert check_chat(messages) == [
        "the conversation ends with the user's message; it must end with the assistant's answer"
    ]


def test_user_and_assistant_must_take_turns() -> None:
    messages = [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "a"},
        {"role": "assistant", "content": "b"},
    ]

    assert check_chat(messages) == [
        "message 2 follows another user message; user and assistant must take turns",
        "message 4 follows another assistant message; user and assistant must take turns",
    ]


def test_a_system_message_must_come_first() -> None:
    messages = chat("a1") + [{"role": "system", "content": "late"}]

    assert check_chat(messages) == ["message 3 is a system message; only the first message may be one"]


def test_unknown_roles_and_empty_messages_are_reported() -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "tool", "content": "{}"},
        {"role": "assistant", "content": ""},
    ]

    assert check_chat(messages) == [
        "message 2 has the unknown role 'tool'; use system, user or assistant",
        "message 3 (assistant) is empty",
    ]


def test_an_empty_conversation_is_reported() -> None:
    assert check_chat([]) == ["the conversation has no messages"]
    assert check_chat([{"role": "system", "content": "s"}]) == ["the conversation has no user or assistant messages"]


def test_a_different_system_prompt_is_reported() -> None:
    assert check_chat(chat("a", system="Be rude."), expected_system="Be polite.") == [
        "the system prompt differs from the project's"
    ]
    assert check_chat(chat("a", system="Be polite.\r\n"), expected_system="Be polite.") == []


def test_a_missing_system_prompt_is_reported_when_the_project_has_one() -> None:
    assert check_chat(chat("a"), expected_system="Be polite.") == [
        "the conversation has no system prompt, but the project has one"
    ]
    assert check_chat(chat("a"), expected_system="") == []
    assert check_chat(chat("a", system="Anything")) == []


def test_the_usual_system_prompt_is_the_most_common_one() -> None:
    conversations = [
        chat("a", system="Be polite."),
        chat("a", system="Be rude."),
        chat("a", system="Be polite. "),
        chat("a"),
        chat("a"),
        chat("a"),
    ]

    assert usual_system_prompt(conversations) == "Be polite."
    assert usual_system_prompt([chat("a"), chat("b")]) is None
    assert usual_system_prompt([]) is None
