"""Tool-call metrics (issue 17): reading calls from answers, each metric on small cases, the
evaluator's report and the evaluation page's table. No network."""

from __future__ import annotations

import json

import pytest

from training.evaluation.evaluator import SYSTEMS, EvalItem, few_shot_prompt, score_answers
from training.evaluation.toolcalls import Call, aggregate, parse_calls, reference_calls, render_calls, score_sample

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
TOOLS = [WEATHER, TIME]


def call(name: str, arguments: dict, id: str = "call_0") -> dict:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


def answer_turn(*calls: dict, content: str = "") -> dict:
    return {"role": "assistant", "content": content, "tool_calls": list(calls)}


def tagged(name: str, arguments: dict) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


# --- reading calls ------------------------------------------------------------------------------


def test_calls_are_read_from_tool_call_tags():
    text = "Let me check.\n" + tagged("get_weather", {"city": "Kyoto"}) + "\n" + tagged("get_time", {})
    calls = parse_calls(text)
    assert [(c.name, c.arguments, c.valid_json) for c in calls] == [
        ("get_weather", {"city": "Kyoto"}, True),
        ("get_time", {}, True),
    ]
    # Cut by the token limit: the unclosed last call counts, its name read, its arguments not.
    cut = parse_calls('<tool_call>{"name": "get_weather", "arguments": {"city": "Ky')
    assert [(c.name, c.arguments, c.valid_json) for c in cut] == [("get_weather", None, False)]
    # Arguments given as JSON text, as OpenAI writes them, are read too.
    as_text = parse_calls('<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Nara\\"}"}</tool_call>')
    assert as_text[0].arguments == {"city": "Nara"} and as_text[0].valid_json
    assert parse_calls("<tool_call>not json at all</tool_call>") == [Call(None, None, False)]


def test_calls_are_read_from_bare_json_objects_and_lists():
    prose = 'I will call {"name": "get_weather", "arguments": {"city": "Osaka"}} now.'
    assert [(c.name, c.arguments) for c in parse_calls(prose)] == [("get_weather", {"city": "Osaka"})]
    llama = '{"name": "get_weather", "parameters": {"city": "Kobe"}}'
    assert parse_calls(llama)[0].arguments == {"city": "Kobe"}
    wrapped = json.dumps([call("get_weather", {"city": "Nara"}), call("get_time", {}, "call_1")])
    assert [c.name for c in parse_calls(wrapped)] == ["get_weather", "get_time"]
    fenced = '```json\n[{"name": "get_time", "arguments": {}}]\n```'
    assert [c.name for c in parse_calls(fenced)] == ["get_time"]
    # Other JSON, and plain text, are no calls.
    assert parse_calls('{"name": "Bob", "age": 3}') == []
    assert parse_calls("It is sunny in Kyoto.") == []
    assert parse_calls("") == [] and parse_calls(None) == []


def test_calls_are_read_from_a_backends_structured_tool_calls():
    message = {"role": "assistant", "content": None, "tool_calls": [call("get_weather", {"city": "Sapporo"})]}
    assert [(c.name, c.arguments) for c in parse_calls(message)] == [("get_weather", {"city": "Sapporo"})]
    broken = {"tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{oops"}}]}
    assert [(c.name, c.valid_json) for c in parse_calls(broken)] == [("get_weather", False)]
    # Without tool_calls, the content is read.
    assert parse_calls({"content": tagged("get_time", {})})[0].name == "get_time"


def test_a_reference_turn_is_rendered_as_tagged_calls_that_read_back_the_same():
    turn = answer_turn(call("get_weather", {"city": "京都"}), call("get_time", {}, "call_1"))
    text = render_calls(turn)
    assert text.count("<tool_call>") == 2 and "京都" in text
    assert parse_calls(text) == reference_calls(turn)
    assert render_calls({"role": "assistant", "content": "hi"}) == "" and reference_calls(None) == []


# --- each metric --------------------------------------------------------------------------------


def scored(answer: str | dict, reference: dict | None, tools=TOOLS) -> dict:
    return score_sample(parse_calls(answer), reference_calls(reference), tools)


def test_right_function_and_exact_arguments():
    reference = answer_turn(call("get_weather", {"city": "Kyoto", "unit": "C"}))
    right = scored(tagged("get_weather", {"unit": "C", "city": "Kyoto"}), reference)  # key order ignored
    assert right["function"] is True and right["arguments_exact"] is True
    assert (right["keys_right"], right["keys"]) == (2, 2)
    value = scored(tagged("get_weather", {"city": "Osaka", "unit": "C"}), reference)
    assert value["function"] is True and value["arguments_exact"] is False
    assert (value["keys_right"], value["keys"]) == (1, 2)
    extra = scored(tagged("get_weather", {"city": "Kyoto", "unit": "C", "days": 3}), reference)
    assert extra["arguments_exact"] is False and (extra["keys_right"], extra["keys"]) == (2, 3)
    wrong = scored(tagged("get_time", {}), reference)
    assert wrong["function"] is False and wrong["arguments_exact"] is False
    assert (wrong["keys_right"], wrong["keys"]) == (0, 2)  # no matching call: every key wrong
    typed = scored(
        tagged("get_weather", {"city": "Kyoto", "unit": "C"}),
        answer_turn(call("get_weather", {"city": "Kyoto", "unit": "C"})),
    )
    assert typed["arguments_exact"] is True


def test_parallel_calls_match_by_name_in_any_order():
    reference = answer_turn(call("get_weather", {"city": "Kyoto"}), call("get_weather", {"city": "Nara"}, "call_1"))
    swapped = scored(tagged("get_weather", {"city": "Nara"}) + tagged("get_weather", {"city": "Kyoto"}), reference)
    assert swapped["function"] is True and swapped["arguments_exact"] is True
    one = scored(tagged("get_weather", {"city": "Kyoto"}), reference)
    assert one["function"] is False and one["arguments_exact"] is False
    assert (one["keys_right"], one["keys"]) == (1, 2)


def test_valid_json_and_schema_validity_per_call():
    reference = answer_turn(call("get_weather", {"city": "Kyoto"}))
    good = scored(tagged("get_weather", {"city": "Kyoto", "unit": "F"}), reference)
    assert (good["calls"], good["valid_json"], good["schema_valid"], good["schema_judged"]) == (1, 1, 1, 1)
    missing = scored(tagged("get_weather", {"unit": "C"}), reference)  # required city missing
    assert (missing["valid_json"], missing["schema_valid"]) == (1, 0)
    bad_enum = scored(tagged("get_weather", {"city": "Kyoto", "unit": "K"}), reference)
    assert bad_enum["schema_valid"] == 0
    unknown = scored(tagged("get_forecast", {"city": "Kyoto"}), reference)
    assert unknown["schema_valid"] == 0 and unknown["schema_judged"] == 1
    broken = scored('<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>', reference)
    assert (broken["calls"], broken["valid_json"], broken["schema_valid"]) == (1, 0, 0)
    # Without tools, schema validity is not judged.
    untooled = scored(tagged("get_weather", {"city": "Kyoto"}), reference, tools=None)
    assert untooled["schema_judged"] == 0


def test_calling_when_it_should_and_not_when_it_should_not():
    reference = answer_turn(call("get_weather", {"city": "Kyoto"}))
    plain = {"role": "assistant", "content": "Hello!"}
    assert scored("It is sunny.", reference)["called"] is False
    quiet = scored("Hello there.", plain)
    assert quiet["should_call"] is False and quiet["called"] is False and quiet["function"] is None
    eager = scored(tagged("get_time", {}), plain)
    assert eager["should_call"] is False and eager["called"] is True


def test_aggregate_over_a_system():
    weather = answer_turn(call("get_weather", {"city": "Kyoto", "unit": "C"}))
    plain = {"role": "assistant", "content": "Hello!"}
    scores = [
        scored(tagged("get_weather", {"city": "Kyoto", "unit": "C"}), weather),  # right
        scored(tagged("get_weather", {"city": "Osaka", "unit": "C"}), weather),  # one key wrong
        scored("It is sunny.", weather),  # no call: missed
        scored(tagged("get_time", {}), plain),  # called when it should not
        scored("Hello!", plain),  # right not to call
        scored('<tool_call>{"name": "get_weather", "arguments": {"city"</tool_call>', weather),  # broken
    ]
    result = aggregate(scores)
    assert result["examples"] == 4 and result["answers"] == 6 and result["calls"] == 4
    assert result["function"] == pytest.approx(3 / 4)  # the broken call still names the function
    assert result["arguments_exact"] == pytest.approx(1 / 4)
    assert result["argument_keys"] == pytest.approx((2 + 1 + 0 + 0) / (2 + 2 + 2 + 2))
    assert result["valid_json"] == pytest.approx(3 / 4)
    assert result["schema_valid"] == pytest.approx(3 / 4)
    assert result["call_precision"] == pytest.approx(3 / 4)  # 4 answers called, 3 should have
    assert result["call_recall"] == pytest.approx(3 / 4)  # 4 should have, 3 did
    empty = aggregate([scored("Hi.", plain)])
    assert empty["function"] is None and empty["call_recall"] is None and empty["call_precision"] is None
    assert empty["valid_json"] is None and empty["schema_valid"] is None


# --- the evaluator and the page -----------------------------------------------------------------


def tool_items() -> list[EvalItem]:
    ask = {"role": "user", "content": "Weather in Kyoto?"}
    return [
        EvalItem(1, [ask, answer_turn(call("get_weather", {"city": "Kyoto"}))], source="a", tools=TOOLS),
        EvalItem(2, [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], tools=TOOLS),
    ]


def test_the_evaluator_scores_tool_calls_beside_the_other_metrics():
    items = tool_items()
    assert items[0].reference == tagged("get_weather", {"city": "Kyoto"})
    answers = [
        {"base": "It is sunny.", "few_shot": tagged("get_time", {}), "tuned": tagged("get_weather", {"city": "Kyoto"})},
        {"base": "Hello!", "few_shot": tagged("get_time", {}), "tuned": "Hello!"},
    ]
    report = score_answers(items, answers)
    assert report.scoring["tool_calls"] is True
    tuned, few_shot, base = (report.overall[s]["tool_calls"] for s in ("tuned", "few_shot", "base"))
    assert tuned["function"] == 1.0 and tuned["arguments_exact"] == 1.0 and tuned["schema_valid"] == 1.0
    assert tuned["call_precision"] == 1.0 and tuned["call_recall"] == 1.0
    assert few_shot["function"] == 0.0 and few_shot["call_precision"] == 0.5
    assert base["call_recall"] == 0.0 and base["call_precision"] is None
    assert "bleu" in report.overall["tuned"]
    assert report.samples[0]["metrics"]["tuned"]["tool_calls"]["arguments_exact"] is True
    assert report.samples[1]["metrics"]["tuned"]["tool_calls"]["should_call"] is False
    assert report.by_source["a"]["tuned"]["tool_calls"]["examples"] == 1
    # Without a reference call, nothing about tool calls is added.
    plain = score_answers(items[1:], answers[1:])
    assert plain.scoring["tool_calls"] is False
    assert all("tool_calls" not in plain.overall[system] for system in SYSTEMS)
    assert "tool_calls" not in plain.samples[0]["metrics"]["tuned"]


def test_a_few_shot_example_shows_its_calls():
    shot = tool_items()[0]
    prompt = few_shot_prompt([{"role": "user", "content": "Weather in Nara?"}], [shot])
    assert prompt[1]["tool_calls"][0]["function"]["name"] == "get_weather"


def test_a_few_shot_prompt_offers_the_functions_its_shots_call():
    from training.evaluation.evaluator import few_shot_tools

    stock = {"type": "function", "function": {"name": "get_stock_price", "parameters": {"type": "object"}}}
    shot = EvalItem(id=9, messages=tool_items()[0].messages, tools=[stock, *TOOLS])

    tools = few_shot_tools(TOOLS, [shot])

    assert [t["function"]["name"] for t in tools] == ["get_weather", "get_time", "get_stock_price"]
    assert few_shot_tools(None, [EvalItem(id=3, messages=[])]) is None


def test_generation_prompts_carry_the_tools(tiny_model_dir):
    from transformers import AutoTokenizer

    from training.evaluation.evaluator import _render

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = _render(tokenizer, tool_items()[0].prompt_messages, TOOLS)
    assert "get_weather" in text and "Weather in Kyoto?" in text


@pytest.mark.django_db
def test_the_metric_table_shows_the_tool_call_columns_and_the_bleu_unit():
    from training.evaluation import tables
    from training.models import Evaluation

    report = score_answers(tool_items(), [{s: "Hello!" for s in SYSTEMS}, {s: "Hello!" for s in SYSTEMS}])
    evaluation = Evaluation(overall=report.overall, config={"scoring": report.scoring})
    columns = [str(c) for c in tables.overall_columns("chat", evaluation)]
    assert columns[0] == "BLEU on words"
    assert columns[-7:] == [
        "Right function",
        "Exact arguments",
        "Argument keys right",
        "Valid JSON arguments",
        "Schema-valid calls",
        "Call precision",
        "Call recall",
    ]
    rows = tables.overall_rows(evaluation, "chat")
    assert all(len(cells) == len(columns) for _name, cells in rows)
    assert rows[2][1][-1] == "0.0 %"  # the tuned model never called: recall 0
    plain = Evaluation(overall={s: {"bleu": 1.0, "tokenize": "char"} for s in SYSTEMS}, config={})
    assert [str(c) for c in tables.overall_columns("chat", plain)][0] == "BLEU on characters"
    assert len(tables.overall_columns("chat", plain)) == len(tables.overall_columns("chat"))
    mixed = Evaluation(overall={"base": {"tokenize": "char"}, "tuned": {"tokenize": "13a"}}, config={})
    assert str(tables.overall_columns("chat", mixed)[0]) == "BLEU"
    verdicts = dict(tables.tool_call_answer_scores(report.samples[0]["metrics"]["tuned"]))
    assert verdicts["Right function"] == "no" and verdicts["Calls"] == "none"


def test_toolcalls_imports_without_django():
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, training.evaluation.toolcalls; print(sorted(m for m in sys.modules if m.startswith('django')))"
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_page_and_the_api_show_the_tool_call_metrics_and_the_scale(client, project, users):
    from django.urls import reverse

    from tests.training.conftest import make_run
    from training.models import EvalSample, Evaluation

    items = tool_items()
    answers = [{s: tagged("get_weather", {"city": "Kyoto"}) for s in SYSTEMS}, {s: "Hello!" for s in SYSTEMS}]
    report = score_answers(items, answers)
    run = make_run(project, users["admin"])
    evaluation = Evaluation.objects.create(
        run=run, status=Evaluation.Status.DONE, total=2, processed=2, overall=report.overall,
        config={"max_new_tokens": 64, "few_shot": 0, "scoring": report.scoring},
    )  # fmt: skip
    for sample in report.samples:
        EvalSample.objects.create(
            evaluation=evaluation, prompt=sample["prompt"], reference=sample["reference"],
            outputs=sample["outputs"], metrics=sample["metrics"],
        )  # fmt: skip
    client.force_login(users["annotator"])
    page = client.get(reverse("evaluation_detail", args=[project.slug, evaluation.pk])).content.decode()
    assert "BLEU on words" in page and "Right function" in page and "Call recall" in page
    assert 'id="evaluation-scale"' in page and 'id="evaluation-tool-calls"' in page
    samples = client.get(reverse("evaluation_samples", args=[project.slug, evaluation.pk])).content.decode()
    assert "Exact arguments" in samples and "get_weather" in samples
    data = client.get(reverse("api_evaluation", args=[project.slug, evaluation.pk])).json()
    assert data["scoring"]["bleu_unit"] == "words" and data["scoring"]["tool_calls"] is True
    assert data["overall"]["tuned"]["tool_calls"]["arguments_exact"] == 1.0
