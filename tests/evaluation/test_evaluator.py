"""The evaluator: base, few-shot and tuned answers of a tiny random Llama trained one step, and
their metrics. No database, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.evaluation.evaluator import (
    SYSTEMS,
    Decoding,
    EvalItem,
    EvaluationLeak,
    check_no_leak,
    evaluate_run,
    few_shot_prompt,
)

# No warmup and a large step: one step is enough for the tuned model to differ from its base.
MOVES = {"warmup_ratio": 0.0, "lr_scheduler": "constant", "learning_rate": 1e-2}


def chat(i: int) -> list[dict[str, str]]:
    return [
        {"role": "user", "content": f"What is {i} plus {i}?"},
        {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."},
    ]


@pytest.fixture(scope="session")
def run_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real LoRA adapter output folder: the tiny model trained one step."""
    import torch

    from training.engine.config import TrainConfig
    from training.engine.interface import TrainExample
    from training.engine.trainer import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        output = tmp_path_factory.mktemp("run") / "output"
        config = TrainConfig(base_model=str(tiny_model_dir), max_steps=1, batch_size=2, max_seq_length=64, **MOVES)
        result = train(config, [TrainExample(messages=chat(i)) for i in range(4)], [], output)
    finally:
        torch.set_num_threads(before)
    assert result.status == "done"
    return output


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def items() -> list[EvalItem]:
    return [
        EvalItem(id=10, messages=chat(10), label="math", source="a"),
        EvalItem(id=11, messages=chat(11), label="math", source="b"),
        EvalItem(id=12, messages=chat(12), label="other", source="a"),
    ]


def shots() -> list[EvalItem]:
    return [EvalItem(id=1, messages=chat(1)), EvalItem(id=2, messages=chat(2))]


def test_items_split_prompt_and_reference():
    item = EvalItem(
        id=1,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ],
    )
    assert [m["content"] for m in item.prompt_messages] == ["Be brief.", "Hi", "Hello", "2+2?"]
    assert item.reference == "4"
    assert item.prompt_text == "2+2?"
    unanswered = EvalItem(id=2, messages=[{"role": "user", "content": "Great film!"}], label="positive")
    assert unanswered.prompt_messages == unanswered.messages
    assert unanswered.reference == "positive"
    from training.evaluation.evaluator import _sample

    sample = _sample(item, {"base": "4", "few_shot": "4", "tuned": "4"}, "chat", [])
    assert [m["content"] for m in sample["context"]] == ["Be brief.", "Hi", "Hello"]  # what the judge reads first


def test_few_shot_prompt_places_shots_after_the_system_message():
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 5 plus 5?"}]
    shot = EvalItem(id=1, messages=[{"role": "system", "content": "Other system."}, *chat(1)])
    result = few_shot_prompt(prompt, [shot, EvalItem(id=2, messages=chat(2))])
    assert [m["role"] for m in result] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert result[0]["content"] == "Be brief."
    assert result[1]["content"] == "What is 1 plus 1?"
    assert result[2]["content"] == "1 plus 1 is 2."
    assert result[4]["content"] == "2 plus 2 is 4."
    assert result[-1]["content"] == "What is 5 plus 5?"
    # Without a system message the shots come first; the prompt itself is not changed.
    plain = [{"role": "user", "content": "Q"}]
    assert few_shot_prompt(plain, [shot])[0]["content"] == "What is 1 plus 1?"
    assert plain == [{"role": "user", "content": "Q"}]
    assert few_shot_prompt(plain, []) == plain


def test_check_no_leak_names_the_ids():
    check_no_leak([1, 2, 3], [4, 5])
    with pytest.raises(EvaluationLeak) as caught:
        check_no_leak([1, 2, 3], [2, 3, 9])
    assert isinstance(caught.value, ValueError)
    assert caught.value.ids == [2, 3]
    assert "2, 3" in str(caught.value)
    with pytest.raises(EvaluationLeak) as many:
        check_no_leak(list(range(30)), list(range(30)))
    message = str(many.value)
    assert "19" in message and "and 10 more" in message
    assert ", 20," not in message


def test_evaluate_run_scores_three_systems(run_dir: Path):
    calls: list[tuple[int, int]] = []
    report = evaluate_run(
        output_dir=run_dir,
        items=items(),
        shots=shots(),
        decoding=Decoding(max_new_tokens=4, batch_size=2),
        kind="chat",
        progress=lambda done, total: calls.append((done, total)),
    )
    assert not report.stopped
    assert calls == [(2, 3), (3, 3)]
    assert [sample["id"] for sample in report.samples] == [10, 11, 12]
    for sample in report.samples:
        assert set(sample["outputs"]) == set(SYSTEMS)
        assert all(isinstance(text, str) for text in sample["outputs"].values())
        assert sample["prompt"].startswith("What is")
        assert sample["reference"].endswith(".")
        for system in SYSTEMS:
            scores = sample["metrics"][system]
            assert {"bleu", "chrf", "rouge_l", "repetition", "length_chars"} <= set(scores)
    assert set(report.overall) == set(SYSTEMS)
    for system in SYSTEMS:
        overall = report.overall[system]
        assert overall["count"] == 3
        assert {"bleu", "chrf", "rouge_l", "repetition", "distinct_1", "distinct_2", "length"} <= set(overall)
        assert overall["length"]["count"] == 3
    assert report.overall["base"]["perplexity"] > 1
    assert report.overall["tuned"]["perplexity"] > 1
    assert report.overall["few_shot"]["perplexity"] is None
    # The base is the same model with its adapter disabled, and the adapter has moved a step.
    assert report.overall["base"]["perplexity"] != report.overall["tuned"]["perplexity"]
    assert set(report.by_label) == {"math", "other"}
    assert report.by_label["math"]["tuned"]["count"] == 2
    assert set(report.by_source) == {"a", "b"}
    assert report.by_source["a"]["base"]["count"] == 2
    assert report.seconds >= 0
    # Greedy decoding: the same answers again.
    again = evaluate_run(
        output_dir=run_dir, items=items()[:1], shots=[], decoding=Decoding(max_new_tokens=4), kind="chat"
    )
    assert again.samples[0]["outputs"]["tuned"] == report.samples[0]["outputs"]["tuned"]


def test_should_stop_stops_early(run_dir: Path):
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 1

    report = evaluate_run(
        output_dir=run_dir,
        items=items(),
        shots=shots(),
        decoding=Decoding(max_new_tokens=2, batch_size=1),
        kind="chat",
        should_stop=should_stop,
    )
    assert report.stopped
    assert [sample["id"] for sample in report.samples] == [10]
    assert report.overall["tuned"]["count"] == 1


def test_classification_records_parsed_labels(run_dir: Path):
    item = EvalItem(id=20, messages=[{"role": "user", "content": "Great film!"}], label="positive", source="x")
    report = evaluate_run(
        output_dir=run_dir,
        items=[item],
        shots=[EvalItem(id=3, messages=[{"role": "user", "content": "Awful."}], label="negative")],
        decoding=Decoding(max_new_tokens=3, temperature=0.7),
        kind="classification",
        labels=["positive", "negative"],
    )
    sample = report.samples[0]
    assert sample["reference"] == "positive"
    assert sample["gold"] == "positive"
    assert set(sample["parsed"]) == set(SYSTEMS)
    for system in SYSTEMS:
        assert sample["parsed"][system] in (None, "positive", "negative")
        classification = report.overall[system]["classification"]
        assert classification["count"] == 1
        assert classification["accuracy"] == (1.0 if sample["parsed"][system] == "positive" else 0.0)
        # Per sample too, for the side-by-side page and the regressions between runs.
        assert sample["metrics"][system]["label"] == sample["parsed"][system]
        assert sample["metrics"][system]["correct"] == (sample["parsed"][system] == "positive")
    assert "accuracy" in report.by_label["positive"]["tuned"]


def test_structured_and_unknown_kind(run_dir: Path):
    item = EvalItem(id=30, messages=[{"role": "user", "content": "JSON?"}, {"role": "assistant", "content": "{}"}])
    report = evaluate_run(
        output_dir=run_dir, items=[item], shots=[], decoding=Decoding(max_new_tokens=2), kind="structured"
    )
    assert report.overall["tuned"]["structured"]["count"] == 1
    valid = report.overall["tuned"]["structured"]["valid_rate"] == 1.0
    assert report.samples[0]["metrics"]["tuned"]["valid"] is valid
    assert report.by_label == {} and report.by_source == {}
    with pytest.raises(ValueError):
        evaluate_run(output_dir=run_dir, items=[item], shots=[], decoding=Decoding(), kind="poetry")


def test_full_fine_tune_loads_the_base_beside_it(tiny_model_dir: Path, tmp_path: Path):
    from training.engine.config import TrainConfig
    from training.engine.interface import TrainExample
    from training.engine.trainer import train

    config = TrainConfig(
        base_model=str(tiny_model_dir), method="full", max_steps=1, batch_size=2, max_seq_length=64, **MOVES
    )
    train(config, [TrainExample(messages=chat(i)) for i in range(4)], [], tmp_path / "output")
    report = evaluate_run(
        output_dir=tmp_path / "output",
        items=items()[:2],
        shots=shots(),
        decoding=Decoding(max_new_tokens=2),
        kind="style",
    )
    assert len(report.samples) == 2
    assert report.overall["base"]["perplexity"] != report.overall["tuned"]["perplexity"]


def test_a_structured_sample_records_validity_and_exact_match_per_system():
    from training.evaluation.evaluator import _sample

    item = EvalItem(id=1, messages=[{"role": "user", "content": "?"}, {"role": "assistant", "content": '{"a": 1}'}])
    outputs = {"base": '{"a": 1', "few_shot": '{"b": 2}', "tuned": '{ "a": 1 }'}
    sample = _sample(item, outputs, "structured", [], "json", None)
    got = {system: (m["valid"], m["exact"]) for system, m in sample["metrics"].items()}
    assert got == {"base": (False, False), "few_shot": (True, False), "tuned": (True, True)}
