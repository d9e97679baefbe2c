"""OpenAI chat JSONL and ShareGPT (LLaMA-Factory) with tools, tool calls, parallel calls,
reasoning and weights: read exactly, written exactly, and read back to the same examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curation import formats
from curation.formats import openai, sharegpt
from curation.formats.rows import ExportRow, ReadOptions

SHARED_TOOLCALLS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "toolcalls"

WEATHER = {
    "name": "get_weather",
    "description": "都市の現在の天気",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {"name": "get_time", "description": "Local time", "parameters": {"type": "object", "properties": {}}}
TOOLS = [{"type": "function", "function": WEATHER}, {"type": "function", "function": TIME}]


def call(id: str, name: str, arguments: str) -> dict:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


# A conversation with reasoning, parallel calls, a single call, Japanese and a weight-0 turn.
AGENT = [
    {"role": "system", "content": "あなたは旅行の助手です。"},
    {"role": "user", "content": "京都と大阪の天気は？"},
    {
        "role": "assistant",
        "content": "",
        "reasoning": "二つの都市を同時に調べる。",
        "tool_calls": [
            call("call_0", "get_weather", '{"city": "京都"}'),
            call("call_1", "get_weather", '{"city": "大阪"}'),
        ],
    },
    {"role": "tool", "content": '{"temp": 18}', "tool_call_id": "call_0"},
    {"role": "tool", "content": "晴れ、20度", "tool_call_id": "call_1"},
    {"role": "assistant", "content": "京都は18度、大阪は晴れで20度です。", "weight": 0},
    {"role": "user", "content": "What time is it?"},
    {"role": "assistant", "content": "", "tool_calls": [call("call_2", "get_time", "{}")]},
    {"role": "tool", "content": "12:00", "tool_call_id": "call_2"},
    {"role": "assistant", "content": "It is noon.", "reasoning": "Read the tool result.", "weight": 1},
]


def write_file(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def read(module, path: Path) -> list:
    return list(module.read(path, ReadOptions()))


def canonical(rows) -> list[tuple]:
    return [(r.messages, r.tools, r.label, r.split, r.metadata, r.errors) for r in rows]


def export_rows(rows) -> list[ExportRow]:
    return [ExportRow(r.messages, r.label, r.split or "unassigned", r.metadata, r.tools) for r in rows]


def round_trip(module, rows, tmp_path: Path, **options) -> list:
    data = b"".join(module.write(export_rows(rows), **options))
    return read(module, write_file(tmp_path, "again." + module.EXTENSION, data))


# --- OpenAI's format rules, as the cookbook's data-format check states them ------------------

OPENAI_ROLES = ("system", "user", "assistant", "tool")
OPENAI_MESSAGE_KEYS = {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call"}


def openai_format_errors(record: dict) -> list[str]:
    """What OpenAI's fine-tuning format refuses in one record (the cookbook's checks, with tools)."""
    errors: list[str] = []
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return ["missing_messages_list"]
    calls: set[str] = set()
    for message in messages:
        role = message.get("role")
        if role not in OPENAI_ROLES:
            errors.append(f"unrecognized_role {role}")
        if set(message) - OPENAI_MESSAGE_KEYS:
            errors.append(f"message_unrecognized_key {set(message) - OPENAI_MESSAGE_KEYS}")
        content, tool_calls = message.get("content"), message.get("tool_calls")
        if not (isinstance(content, str) and content) and not tool_calls:
            errors.append("missing_content")
        if "content" in message and not isinstance(content, str):
            errors.append("content_not_text")
        if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1)):
            errors.append("invalid_weight")
        for tool_call in tool_calls or []:
            function = tool_call.get("function") or {}
            if not (
                isinstance(tool_call.get("id"), str)
                and tool_call.get("type") == "function"
                and isinstance(function.get("name"), str)
                and isinstance(function.get("arguments"), str)
            ):
                errors.append("invalid_tool_call")
            else:
                json.loads(function["arguments"])
                calls.add(tool_call["id"])
        if role == "tool" and message.get("tool_call_id") not in calls:
            errors.append("tool_result_without_call")
    if not any(m.get("role") == "assistant" for m in messages):
        errors.append("example_missing_assistant_message")
    for tool in record.get("tools", []):
        if tool.get("type") != "function" or not isinstance(tool.get("function", {}).get("name"), str):
            errors.append("invalid_tool")
    return errors


# --- OpenAI: reading --------------------------------------------------------------------------


def test_openai_reads_tools_calls_results_weights_and_reasoning(tmp_path):
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Kyoto?", "name": "aki"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "Call the tool.",
                "tool_calls": [call("c1", "get_weather", '{"city":"Kyoto"}')],
            },
            {"role": "tool", "content": "18C", "tool_call_id": "c1"},
            {"role": "assistant", "content": "<think>\nIt is mild.\n</think>\n\n18 degrees.", "weight": 0},
        ],
        "tools": TOOLS,
        "parallel_tool_calls": False,
    }
    [row] = read(openai, write_file(tmp_path, "a.jsonl", jsonl(record)))

    assert row.errors == []
    assert row.tools == TOOLS
    assert row.messages == [
        {"role": "user", "content": "Weather in Kyoto?", "name": "aki"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [call("c1", "get_weather", '{"city":"Kyoto"}')],
            "reasoning": "Call the tool.",
        },
        {"role": "tool", "content": "18C", "tool_call_id": "c1"},
        {"role": "assistant", "content": "18 degrees.", "weight": 0, "reasoning": "It is mild."},
    ]
    assert row.metadata == {"parallel_tool_calls": False}


def test_openai_reads_the_legacy_functions_and_function_call(tmp_path):
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Kyoto?"},
            {"role": "assistant", "function_call": {"name": "get_weather", "arguments": '{"city": "Kyoto"}'}},
            {"role": "function", "name": "get_weather", "content": "18C"},
            {"role": "assistant", "content": "18 degrees."},
        ],
        "functions": [WEATHER],
    }
    [row] = read(openai, write_file(tmp_path, "a.jsonl", jsonl(record)))

    assert row.errors == [] and row.metadata == {}
    assert row.tools == [TOOLS[0]]
    assert row.messages[1:3] == [
        {"role": "assistant", "content": "", "tool_calls": [call("call_0", "get_weather", '{"city": "Kyoto"}')]},
        {"role": "tool", "name": "get_weather", "content": "18C", "tool_call_id": "call_0"},
    ]


def test_openai_names_the_field_of_tools_that_are_not_schemas(tmp_path):
    good = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    rows = read(openai, write_file(tmp_path, "a.jsonl", jsonl(good, {**good, "tools": [{"description": "x"}]})))

    assert rows[0].errors == []
    [error] = rows[1].errors
    assert (error.line, error.field, error.code) == (2, "tools", "invalid_field")
    assert "tool 1" in error.message


def test_openai_keeps_someone_elses_id_in_metadata_and_drops_shikomis_own(tmp_path):
    chat = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    theirs = {**chat, "id": "t-1"}
    ours = {**chat, "id": 7, "label": None, "split": "test", "status": "approved", "metadata": {"k": 1}}
    rows = read(openai, write_file(tmp_path, "a.jsonl", jsonl(theirs, ours)))

    assert rows[0].metadata == {"id": "t-1"}
    assert (rows[1].metadata, rows[1].split) == ({"k": 1}, "test")
    if hasattr(rows[1], "status"):
        assert rows[1].status == "approved"


# --- OpenAI: writing --------------------------------------------------------------------------


def test_openai_writes_its_fine_tuning_format_exactly(tmp_path):
    rows = [
        ExportRow(AGENT, "billing", "train", {"src": "a"}, TOOLS),
        ExportRow([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]),
    ]
    records = [json.loads(line) for line in b"".join(openai.write(rows)).decode().splitlines()]

    assert [openai_format_errors(r) for r in records] == [[], []]
    assert records[1] == {"messages": rows[1].messages}  # no tools, no label when there are none
    first = records[0]
    assert list(first) == ["messages", "tools", "label"] and first["tools"] == TOOLS
    assert first["messages"][2] == {
        "role": "assistant",
        "content": "<think>\n二つの都市を同時に調べる。\n</think>\n\n",
        "tool_calls": AGENT[2]["tool_calls"],
    }
    assert first["messages"][5]["weight"] == 0
    assert first["messages"][7] == {"role": "assistant", "tool_calls": AGENT[7]["tool_calls"]}
    assert first["messages"][9]["content"] == "<think>\nRead the tool result.\n</think>\n\nIt is noon."


def test_openai_round_trip_gives_back_the_same_examples(tmp_path):
    record = {"messages": AGENT, "tools": TOOLS, "label": "billing"}
    rows = read(openai, write_file(tmp_path, "a.jsonl", jsonl(record)))
    assert rows[0].errors == [] and rows[0].messages == AGENT

    assert canonical(round_trip(openai, rows, tmp_path)) == canonical(rows)


def test_openai_with_shikomi_fields_gives_back_split_metadata_and_status(tmp_path):
    row = ExportRow(AGENT, None, "validation", {"source": "mail", "n": [1]}, TOOLS, id=12, status="approved")
    data = b"".join(openai.write([row], shikomi_fields=True))
    record = json.loads(data)

    assert record["id"] == 12 and record["status"] == "approved" and record["label"] is None
    assert openai_format_errors(record) == []
    [again] = read(openai, write_file(tmp_path, "a.jsonl", data))
    assert (again.messages, again.tools, again.split, again.metadata, again.label) == (
        AGENT,
        TOOLS,
        "validation",
        row.metadata,
        None,
    )


# --- ShareGPT (LLaMA-Factory): reading --------------------------------------------------------


def llama_factory_record(**extra) -> dict:
    """AGENT as LLaMA-Factory writes it, results of the parallel calls as one JSON list."""
    return {
        "conversations": [
            {"from": "human", "value": "京都と大阪の天気は？"},
            {
                "from": "function_call",
                "value": json.dumps(
                    [
                        {"name": "get_weather", "arguments": {"city": "京都"}},
                        {"name": "get_weather", "arguments": {"city": "大阪"}},
                    ],
                    ensure_ascii=False,
                ),
            },
            {"from": "observation", "value": json.dumps([{"temp": 18}, "晴れ、20度"], ensure_ascii=False)},
            {"from": "gpt", "value": "京都は18度、大阪は晴れで20度です。"},
            {"from": "human", "value": "What time is it?"},
            {"from": "function_call", "value": '{"name": "get_time", "arguments": {}}'},
            {"from": "observation", "value": "12:00"},
            {"from": "gpt", "value": "<think>\nRead the tool result.\n</think>\n\nIt is noon."},
        ],
        "system": "あなたは旅行の助手です。",
        "tools": json.dumps([WEATHER, TIME], ensure_ascii=False),
        **extra,
    }


def without_weights_and_reasoning_on_calls(messages: list[dict]) -> list[dict]:
    out = []
    for m in messages:
        m = {k: v for k, v in m.items() if k != "weight"}
        if m.get("tool_calls"):
            m.pop("reasoning", None)
        out.append(m)
    return out


def test_sharegpt_reads_llama_factorys_tool_layout(tmp_path):
    [row] = read(sharegpt, write_file(tmp_path, "s.json", json.dumps([llama_factory_record()])))

    assert row.errors == []
    assert row.tools == TOOLS
    assert row.messages == without_weights_and_reasoning_on_calls(AGENT)


def test_sharegpt_reads_one_observation_per_parallel_call_and_tools_as_a_list(tmp_path):
    record = llama_factory_record(tools=[WEATHER, TIME])
    turns = record["conversations"]
    turns[2:3] = [{"from": "observation", "value": '{"temp": 18}'}, {"from": "observation", "value": "晴れ、20度"}]
    [row] = read(sharegpt, write_file(tmp_path, "s.jsonl", jsonl(record)))

    assert row.errors == [] and row.tools == TOOLS
    assert row.messages == without_weights_and_reasoning_on_calls(AGENT)


def test_sharegpt_keeps_a_list_that_is_the_answer_of_one_call(tmp_path):
    record = {
        "conversations": [
            {"from": "human", "value": "Cities?"},
            {"from": "function_call", "value": '{"name": "list_cities", "arguments": {}}'},
            {"from": "observation", "value": '["Kyoto", "Osaka"]'},
            {"from": "gpt", "value": "Kyoto and Osaka."},
        ]
    }
    [row] = read(sharegpt, write_file(tmp_path, "s.jsonl", jsonl(record)))

    assert row.messages[2] == {"role": "tool", "content": '["Kyoto", "Osaka"]', "tool_call_id": "call_0"}


BAD_TURNS = {
    "cut off": ({"from": "function_call", "value": '{"name": "get_time", "arguments": '}, "invalid_json"),
    "no name": ({"from": "function_call", "value": '[{"name": "get_time"}, {"arguments": {}}]'}, "invalid_field"),
    "arguments": ({"from": "function_call", "value": '{"name": "get_time", "arguments": 3}'}, "invalid_field"),
    "orphan": ({"from": "observation", "value": "12:00"}, "unknown_call"),
}


@pytest.mark.parametrize(
    ("bad", "field", "says"),
    [
        ("cut off", "conversations[1].value", "not valid JSON"),
        ("no name", "conversations[1].value[1]", "function call"),
        ("arguments", "conversations[1].value", '"arguments" of get_time'),
        ("orphan", "conversations[3]", "answers no function call"),
    ],
)
def test_sharegpt_names_the_line_and_field_of_a_bad_call_or_result(tmp_path, bad, field, says):
    turn, code = BAD_TURNS[bad]
    good = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    conversation = [
        {"from": "human", "value": "Time?"},
        {"from": "function_call", "value": '{"name": "get_time", "arguments": {}}'},
        {"from": "observation", "value": "12:00"},
        {"from": "gpt", "value": "Noon."},
    ]
    if turn["from"] == "function_call":
        conversation[1] = turn
    else:
        conversation.insert(3, turn)
    rows = read(sharegpt, write_file(tmp_path, "s.jsonl", jsonl(good, {"conversations": conversation})))

    assert rows[0].errors == []
    [error] = rows[1].errors
    assert (error.line, error.field, error.code) == (2, field, code)
    assert says in error.message and rows[1].messages is None


@pytest.mark.parametrize("tools", ['[{"description": "no name"}]', "not json", '{"name": "f"}', "[3]"])
def test_sharegpt_names_tools_that_are_not_schemas(tmp_path, tools):
    record = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}], "tools": tools}
    [row] = read(sharegpt, write_file(tmp_path, "s.jsonl", jsonl(record)))

    [error] = row.errors
    assert (error.line, error.field, error.code) == (1, "tools", "invalid_field")


def test_sharegpt_importing_the_same_file_twice_gives_the_same_examples(tmp_path):
    path = write_file(tmp_path, "s.json", json.dumps([llama_factory_record()] * 2))

    first, second = read(sharegpt, path), read(sharegpt, path)
    assert canonical(first) == canonical(second)
    assert first[0].messages == first[1].messages


# --- ShareGPT: writing ------------------------------------------------------------------------


def test_sharegpt_writes_llama_factorys_layout():
    messages = without_weights_and_reasoning_on_calls(AGENT)
    row = ExportRow(messages, "billing", "train", {"src": "a"}, TOOLS)
    [record] = json.loads(b"".join(sharegpt.write([row])))

    assert record == {**llama_factory_record(), "label": "billing", "split": "train"}
    assert sharegpt.cannot_hold(row) is None


def test_sharegpt_round_trip_gives_back_the_same_examples(tmp_path):
    rows = read(sharegpt, write_file(tmp_path, "s.json", json.dumps([llama_factory_record(label="billing")])))

    again = round_trip(sharegpt, rows, tmp_path)
    assert canonical(again) == canonical(rows)
    assert again[0].messages == without_weights_and_reasoning_on_calls(AGENT)


def test_sharegpt_writes_separate_observations_when_not_every_parallel_call_is_answered(tmp_path):
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [call("call_0", "get_weather", '{"city": "京都"}'), call("call_1", "get_time", "{}")],
        },
        {"role": "tool", "content": "18C", "tool_call_id": "call_0"},
        {"role": "assistant", "content": "18 degrees."},
    ]
    row = ExportRow(messages, tools=TOOLS)
    [record] = json.loads(b"".join(sharegpt.write([row])))
    assert [t["from"] for t in record["conversations"]] == ["human", "function_call", "observation", "gpt"]
    assert record["conversations"][2]["value"] == "18C"
    assert sharegpt.cannot_hold(row) is None
    [again] = read(sharegpt, write_file(tmp_path, "s.json", json.dumps([record])))
    assert again.messages == messages


def test_sharegpt_keeps_arguments_text_that_is_not_written_as_it_reads_back(tmp_path):
    compact = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [call("call_0", "get_weather", '{"city":"Kyoto"}')]},
        {"role": "tool", "content": "18C", "tool_call_id": "call_0"},
        {"role": "assistant", "content": "18 degrees."},
    ]
    data = b"".join(sharegpt.write([ExportRow(compact, tools=TOOLS)]))
    assert json.loads(json.loads(data)[0]["conversations"][1]["value"])["arguments"] == '{"city":"Kyoto"}'
    [again] = read(sharegpt, write_file(tmp_path, "s.json", data))
    assert again.messages == compact


def test_sharegpt_with_shikomi_fields_gives_back_metadata_and_status(tmp_path):
    messages = without_weights_and_reasoning_on_calls(AGENT)
    row = ExportRow(messages, None, "test", {"source": "web"}, TOOLS, id=3, status="needs_review")
    data = b"".join(sharegpt.write([row], shikomi_fields=True))
    [record] = json.loads(data)

    assert (record["id"], record["status"], record["split"]) == (3, "needs_review", "test")
    assert record["metadata"] == {"source": "web"}
    [again] = read(sharegpt, write_file(tmp_path, "s.json", data))
    assert (again.messages, again.tools, again.metadata, again.split) == (messages, TOOLS, {"source": "web"}, "test")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m[5].update(weight=0), "turn weights"),
        (lambda m: m[1].update(name="aki"), "speaker names"),
        (lambda m: m[2].update(content="Let me look."), "text or reasoning beside tool calls"),
        (lambda m: m[7].update(reasoning="Ask the clock."), "text or reasoning beside tool calls"),
        (lambda m: (m[7]["tool_calls"][0].update(id="abc"), m[8].update(tool_call_id="abc")), "call ids"),
        (lambda m: (m[3].update(tool_call_id="call_1"), m[4].update(tool_call_id="call_0")), "call ids"),
        (lambda m: (m.pop(4), m[3].update(content='["a", "b"]')), "call ids"),
    ],
)
def test_sharegpt_says_what_it_cannot_hold(change, reason):
    messages = json.loads(json.dumps(without_weights_and_reasoning_on_calls(AGENT)))
    change(messages)
    assert sharegpt.cannot_hold(ExportRow(messages, tools=TOOLS)) == reason


def test_a_weight_of_one_and_a_tool_result_without_calls_are_held():
    messages = [
        {"role": "user", "content": "Track 42"},
        {"role": "tool", "content": "in transit"},
        {"role": "assistant", "content": "On its way.", "weight": 1},
    ]
    assert sharegpt.cannot_hold(ExportRow(messages)) is None


# --- the LLaMA-Factory demo data, when present ------------------------------------------------


@pytest.mark.skipif(
    not (SHARED_TOOLCALLS / "glaive_toolcall_zh_demo.json").exists(), reason="../shared/data/toolcalls is absent"
)
def test_llama_factorys_glaive_tool_call_demo_imports_and_round_trips(tmp_path):
    path = SHARED_TOOLCALLS / "glaive_toolcall_zh_demo.json"
    rows = list(formats.read(path, "sharegpt", ReadOptions(), labels=()))

    assert rows and [r.errors for r in rows if r.errors] == []
    with_tools = [r for r in rows if r.tools]
    assert with_tools and all(t["type"] == "function" and t["function"]["name"] for r in with_tools for t in r.tools)
    calls = [c for r in rows for m in r.messages for c in m.get("tool_calls", [])]
    assert calls and all(isinstance(json.loads(c["function"]["arguments"]), dict) for c in calls)
    for r in rows:
        names = {t["function"]["name"] for t in r.tools}
        results = [m for m in r.messages if m["role"] == "tool"]
        made = {c["id"] for m in r.messages for c in m.get("tool_calls", [])}
        assert {c["function"]["name"] for m in r.messages for c in m.get("tool_calls", [])} <= names
        assert not made or all(m.get("tool_call_id") in made for m in results)
    assert all(sharegpt.cannot_hold(row) is None for row in export_rows(rows))

    data = b"".join(sharegpt.write(export_rows(rows)))
    again = list(formats.read(write_file(tmp_path, "again.json", data), "sharegpt", ReadOptions(), labels=()))
    assert canonical(again) == canonical(rows)
