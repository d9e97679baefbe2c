"""Which tokens carry loss in a tool-call conversation with reasoning, for each reasoning setting.

Two renderings of the same conversation: the tiny model's own template (SmolLM2's, which knows
nothing of tools or reasoning: the documented fallback) and a Qwen3-like template that renders
`tools`, `tool_calls`, tool results and `reasoning_content` itself. Run with `-s` to see the
trained stretches marked «like this».
"""

from __future__ import annotations

import copy
import json

import pytest

from training.engine.chat import FALLBACK_TOOLS_HEADER, rendering, rendering_record
from training.engine.config import ConfigInvalid, TrainConfig, config_clean
from training.engine.data import IGNORE, encode
from training.engine.interface import TrainExample

SETTINGS = ["train", "mask", "drop_earlier"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
R1, R2, R3, R4 = (
    "Kyoto weather: call the tool.",
    "The tool says 21.",
    "A rude turn, not to learn.",
    "Osaka now, same tool.",
)


def call(call_id: str, city: str) -> dict:
    arguments = json.dumps({"city": city}, ensure_ascii=False)
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


MESSAGES = [
    {"role": "system", "content": "You help with the weather."},
    {"role": "user", "content": "Weather in Kyoto?"},
    {"role": "assistant", "content": "", "reasoning": R1, "tool_calls": [call("call_0", "京都")]},
    {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 21}'},
    {"role": "assistant", "content": "It is 21 degrees in Kyoto.", "reasoning": R2},
    {"role": "user", "content": "Say something rude."},
    {"role": "assistant", "content": "Rude words.", "reasoning": R3, "weight": 0},
    {"role": "user", "content": "And Osaka?"},
    {"role": "assistant", "content": "Checking Osaka.", "reasoning": R4, "tool_calls": [call("call_1", "Osaka")]},
]

# A Qwen3-like template: tools in the system turn, calls as <tool_call> JSON, results in a user
# turn, reasoning_content as a <think> block.
QWEN_LIKE = r"""
{%- if messages[0].role == 'system' %}{% set system = messages[0].content %}{% set rest = messages[1:] %}
{%- else %}{% set system = '' %}{% set rest = messages %}{% endif %}
{%- if tools %}{{ '<|im_start|>system\n' + (system + '\n\n' if system else '') + '# Tools\n<tools>' }}
{%- for t in tools %}{{ '\n' + (t | tojson) }}{% endfor %}{{ '\n</tools><|im_end|>\n' }}
{%- elif system %}{{ '<|im_start|>system\n' + system + '<|im_end|>\n' }}{% endif %}
{%- for m in rest %}
{%- if m.role == 'user' %}{{ '<|im_start|>user\n' + m.content + '<|im_end|>\n' }}
{%- elif m.role == 'assistant' %}{{ '<|im_start|>assistant\n' }}
{%- if m.reasoning_content %}{{ '<think>\n' + m.reasoning_content + '\n</think>\n\n' }}{% endif %}{{ m.content }}
{%- for c in m.tool_calls or [] %}{% if not loop.first or m.content %}{{ '\n' }}{% endif %}
{{- '<tool_call>\n{"name": "' + c.function.name + '", "arguments": ' }}
{{- (c.function.arguments | tojson) + '}\n</tool_call>' }}
{%- endfor %}{{ '<|im_end|>\n' }}
{%- elif m.role == 'tool' %}{{ '<|im_start|>user\n<tool_response>\n' + m.content + '\n</tool_response><|im_end|>\n' }}
{%- endif %}{% endfor %}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
"""


@pytest.fixture(scope="module")
def smollm(tiny_model_dir):
    from training.engine.modeling import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def qwen_like(smollm):
    tokenizer = copy.deepcopy(smollm)
    tokenizer.chat_template = QWEN_LIKE
    return tokenizer


def marked(tokenizer, encoded) -> str:
    """The whole text with every run of trained tokens between « and » (each run decoded whole,
    so that a character split over tokens stays whole)."""
    runs: list[tuple[bool, list[int]]] = []
    for token, label in zip(encoded.input_ids, encoded.labels, strict=True):
        trained = label != IGNORE
        if not runs or runs[-1][0] != trained:
            runs.append((trained, []))
        runs[-1][1].append(token)
    return "".join(f"«{tokenizer.decode(ids)}»" if trained else tokenizer.decode(ids) for trained, ids in runs)


def trained_runs(text: str) -> list[str]:
    return [part.split("»", 1)[0] for part in text.split("«")[1:]]


def encode_with(tokenizer, setting: str, messages=MESSAGES, tools=TOOLS):
    encoded = encode(tokenizer, TrainExample(messages=copy.deepcopy(messages), tools=tools), 4096, reasoning=setting)
    text = marked(tokenizer, encoded)
    print(f"\n--- reasoning={setting} ---\n{text}")
    return encoded, text


def test_the_probe_tells_the_renderings_apart(smollm, qwen_like):
    assert rendering(smollm).tools is False and rendering(smollm).reasoning is False
    assert rendering(smollm).tool_results is True  # SmolLM2's template writes any role
    assert rendering(qwen_like).tools is True and rendering(qwen_like).reasoning is True


@pytest.mark.parametrize("setting", SETTINGS)
def test_fallback_rendering_trains_answers_and_calls_never_results_or_weight_0(smollm, setting):
    encoded, text = encode_with(smollm, setting)
    runs = trained_runs(text)
    whole = "".join(runs)
    end = "<|im_end|>"
    call_kyoto = '<tool_call>{"name": "get_weather", "arguments": {"city": "京都"}}</tool_call>'
    call_osaka = '<tool_call>{"name": "get_weather", "arguments": {"city": "Osaka"}}</tool_call>'
    # The tools are listed in the system message, after its own text (never trained).
    system = text.split(end, 1)[0]
    assert system.startswith("<|im_start|>system\nYou help with the weather.\n\n" + FALLBACK_TOOLS_HEADER)
    assert '"name": "get_weather"' in system and "«" not in system
    # Tool results, user turns and the weight-0 turn carry no loss, whatever the setting.
    for untrained in ('{"temp_c": 21}', "Weather in Kyoto?", "Say something rude.", "Rude words.", R3):
        assert untrained not in whole
    assert "<|im_start|>tool\n" + '{"temp_c": 21}' + end in text  # the template writes the tool turn
    think = {r: f"<think>\n{r}\n</think>\n\n" for r in (R1, R2, R4)}
    if setting == "train":
        assert runs == [
            think[R1] + call_kyoto + end,
            think[R2] + "It is 21 degrees in Kyoto." + end,
            think[R4] + "Checking Osaka.\n" + call_osaka + end,
        ]
    elif setting == "mask":
        assert runs == [call_kyoto + end, "It is 21 degrees in Kyoto." + end, "Checking Osaka.\n" + call_osaka + end]
        assert all(think[r] in text for r in (R1, R2, R4))  # shown, not trained
    else:
        last = think[R4] + "Checking Osaka.\n" + call_osaka + end
        assert runs == [call_kyoto + end, "It is 21 degrees in Kyoto." + end, last]
        assert R1 not in text and R2 not in text and R3 not in text
    assert encoded.trainable_tokens == sum(1 for label in encoded.labels[1:] if label != IGNORE)


@pytest.mark.parametrize("setting", SETTINGS)
def test_template_rendering_gets_the_tools_and_trains_the_same_parts(qwen_like, setting):
    encoded, text = encode_with(qwen_like, setting)
    runs = trained_runs(text)
    end = "<|im_end|>"
    assert text.startswith("<|im_start|>system\nYou help with the weather.\n\n# Tools\n<tools>\n")
    assert "<tool_response>\n" + '{"temp_c": 21}' + "\n</tool_response>" in text and FALLBACK_TOOLS_HEADER not in text
    call_kyoto = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "京都"}}\n</tool_call>'
    call_osaka = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Osaka"}}\n</tool_call>'
    think = {r: f"<think>\n{r}\n</think>\n\n" for r in (R1, R2, R4)}
    answers = [call_kyoto + end, "It is 21 degrees in Kyoto." + end, "Checking Osaka.\n" + call_osaka + end]
    if setting == "train":
        assert runs == [think[R1] + answers[0], think[R2] + answers[1], think[R4] + answers[2]]
    elif setting == "mask":
        assert runs == answers and all(think[r] in text for r in (R1, R2, R4))
    else:
        assert runs == [answers[0], answers[1], think[R4] + answers[2]]
        assert R1 not in text and R2 not in text
    whole = "".join(runs)
    assert '{"temp_c": 21}' not in whole and "Rude words." not in whole and R3 not in whole


def test_a_template_that_refuses_tool_turns_gets_them_as_one_user_turn(smollm):
    strict = copy.deepcopy(smollm)
    strict.chat_template = (
        "{% for m in messages %}{% if m.role not in ['system', 'user', 'assistant'] %}"
        "{{ raise_exception('roles are system, user and assistant') }}{% endif %}"
        "{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    assert rendering(strict).tool_results is False
    messages = [
        {"role": "user", "content": "Two cities?"},
        {"role": "assistant", "content": "", "tool_calls": [call("a", "Kyoto"), call("b", "Osaka")]},
        {"role": "tool", "tool_call_id": "a", "content": "21"},
        {"role": "tool", "tool_call_id": "b", "content": "25"},
        {"role": "assistant", "content": "21 and 25."},
    ]
    _encoded, text = encode_with(strict, "train", messages, tools=None)
    results = "<|im_start|>user\n<tool_response>\n21\n</tool_response>\n<tool_response>\n25\n</tool_response><|im_end|>"
    assert results in text
    runs = trained_runs(text)
    assert len(runs) == 2 and runs[1] == "21 and 25.<|im_end|>"
    assert runs[0].count("<tool_call>") == 2 and "Osaka" in runs[0]


def test_no_trained_turn_means_nothing_to_learn(smollm):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello.", "weight": 0}]
    assert encode(smollm, TrainExample(messages=messages), 512) is None


def test_the_run_records_the_rendering(smollm, qwen_like):
    tool_example = TrainExample(messages=MESSAGES, tools=TOOLS)
    record, lines = rendering_record(smollm, [tool_example])
    assert record == {"tools": "fallback", "tool_results": "template", "reasoning": "fallback"}
    assert any("<tool_call>" in line for line in lines)
    assert rendering_record(qwen_like, [tool_example])[0] == dict.fromkeys(record, "template")
    # Plain conversations: nothing to record.
    plain = TrainExample(messages=[*MESSAGES[:2], {"role": "assistant", "content": "x"}])
    assert rendering_record(smollm, [plain]) == ({}, [])


def test_reasoning_is_a_checked_run_setting():
    assert TrainConfig().reasoning == "train"
    assert config_clean({"reasoning": "mask"}).reasoning == "mask"
    with pytest.raises(ConfigInvalid) as error:
        config_clean({"reasoning": "sometimes"})
    assert set(error.value.errors) == {"reasoning"}


def test_a_run_trains_with_the_tools_and_records_the_rendering(tiny_model_dir, tmp_path, one_thread):
    from tests.training.test_trainer import Recorder, make_config
    from training.engine.trainer import train

    recorder = Recorder()
    examples = [TrainExample(messages=copy.deepcopy(MESSAGES), tools=TOOLS) for _ in range(2)]
    config = make_config(tiny_model_dir, max_steps=1, max_seq_length=512, reasoning="mask")
    result = train(config, examples, [], tmp_path / "out", callbacks=recorder)
    assert result.extra["rendering"] == {"tools": "fallback", "tool_results": "template", "reasoning": "fallback"}
    assert any("<tool_call>" in line for line in recorder.messages)


def test_the_launch_freezes_the_tools_and_the_run_gets_them(project, users, monkeypatch):
    from curation.core.services import example_create
    from tests.training.test_services import FakeTrainer
    from training.runs.services import run_dir
    from training.runs.tasks import training_run_create, training_run_execute

    fake = FakeTrainer()
    monkeypatch.setattr("training.engine.trainer.train", fake)
    example = example_create(
        project=project, user=users["admin"], messages=copy.deepcopy(MESSAGES), tools=TOOLS, split="train"
    )
    example_create(
        project=project,
        user=users["admin"],
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
        split="train",
    )
    run = training_run_create(project=project, user=users["admin"], config={"reasoning": "drop_earlier"})
    frozen = json.loads((run_dir(run) / "data.json").read_text())
    assert frozen["train"][0]["tools"] == TOOLS and "tools" not in frozen["train"][1]
    run = training_run_execute(run=run)
    config, trained = fake.calls[0]["config"], fake.calls[0]["train"]
    assert config.reasoning == run.config["reasoning"] == "drop_earlier"
    assert trained[0].tools == TOOLS and trained[0].messages == example.messages and trained[1].tools is None
