"""Evaluation on one scale (issue 17): BLEU's tokenisation is chosen once per evaluation, from its
references, and used for every system, every group and every per-sample score; texts are
NFKC-normalised before scoring; perplexity covers the evaluated assistant turn only. No database,
no network."""

from __future__ import annotations

import math

import pytest
from sacrebleu.metrics import BLEU

from training.evaluation import metrics
from training.evaluation.evaluator import SYSTEMS, EvalItem, score_answers
from training.evaluation.metrics import choose_tokenize, load_metric, sample_text_metrics, text_metrics


def item(i: int, question: str, answer: str, **fields) -> EvalItem:
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return EvalItem(id=i, messages=messages, **fields)


def test_the_tokenisation_is_chosen_from_the_references_alone():
    assert choose_tokenize(["今日は晴れ", "明日は雨", "The sky is blue."]) == "char"
    assert choose_tokenize(["今日は晴れ", "The sky is blue."]) == "char"  # half: characters
    assert choose_tokenize(["今日は晴れ", "The sky is blue.", "It rains."]) == "13a"
    assert choose_tokenize(["한국어 문장", "Another"]) == "13a"  # Korean writes spaces: words
    assert choose_tokenize(["ﾃｽﾄ", "", "  "]) == "char"  # blanks do not count; half-width kana is Japanese
    assert choose_tokenize([]) == "13a"
    assert metrics.scale("char") == {"tokenize": "char", "bleu_unit": "characters", "normalization": "NFKC"}
    assert metrics.scale("13a")["bleu_unit"] == "words"
    # The answers never move it: one Japanese answer to English references stays on words.
    assert text_metrics(["今日は晴れです"], ["The weather is fine."])["tokenize"] == "13a"
    bleu = load_metric("bleu")
    assert bleu.compute(predictions=["今日は晴れです"], references=["The weather is fine."])["tokenize"] == "13a"
    assert bleu.compute(predictions=["It is fine."], references=["今日は晴れです"])["tokenize"] == "char"


def test_one_system_answering_in_japanese_does_not_change_its_scale():
    """The bug: a system with one Japanese answer was scored on characters, the others on words."""
    items = [item(i, f"Question {i}?", f"The answer number {i} is here.") for i in range(3)]
    answers = [
        {
            "base": f"The answer {i} is here.",
            "few_shot": "答えはここです。" if i == 0 else f"Answer {i}.",
            "tuned": f"The answer number {i} is here.",
        }
        for i in range(3)
    ]
    report = score_answers(items, answers)
    assert report.scoring["tokenize"] == "13a" and report.scoring["bleu_unit"] == "words"
    assert {report.overall[system]["tokenize"] for system in SYSTEMS} == {"13a"}
    assert report.overall["tuned"]["bleu"] == pytest.approx(100)


def test_a_mixed_japanese_english_set_scores_every_system_on_the_same_tokenisation():
    items = [
        item(1, "天気は?", "今日は良い天気です。", label="ja", source="a"),
        item(2, "予定は?", "明日は会議があります。", label="ja", source="b"),
        item(3, "色は?", "空は青いです。", label="ja", source="a"),
        item(4, "Colour?", "The sky is blue today.", label="en", source="b"),
    ]
    answers = [
        {"base": "The weather is good.", "few_shot": "今日は悪い天気です。", "tuned": "今日は良い天気です。"},
        {"base": "A meeting tomorrow.", "few_shot": "明日は会議です。", "tuned": "明日は会議があります。"},
        {"base": "Blue.", "few_shot": "空は青い。", "tuned": "空は青いです。"},
        {"base": "The sky is blue.", "few_shot": "Blue sky today.", "tuned": "The sky is blue today."},
    ]
    report = score_answers(items, answers)
    assert report.scoring["tokenize"] == "char" and report.scoring["bleu_unit"] == "characters"
    for system in SYSTEMS:
        assert report.overall[system]["tokenize"] == "char"
        for groups in (report.by_label, report.by_source):
            assert {scores[system]["tokenize"] for scores in groups.values()} == {"char"}
    # The base model answered in English throughout: it is still scored on characters, and its
    # corpus BLEU is sacrebleu's character BLEU of the same texts.
    outputs = [answer["base"] for answer in answers]
    references = [one.reference for one in items]
    expected = BLEU(tokenize="char", effective_order=True).corpus_score(outputs, [references]).score
    assert report.overall["base"]["bleu"] == pytest.approx(expected)


def test_per_sample_scores_use_the_corpus_choice():
    items = [
        item(1, "天気は?", "今日は良い天気です。"),
        item(2, "予定は?", "明日は会議があります。"),
        item(3, "Colour?", "The sky is very blue today."),
    ]
    answers = [
        {system: text for system in SYSTEMS} for text in ("今日は天気です。", "明日は会議。", "The sky is blue today.")
    ]
    report = score_answers(items, answers)
    assert report.scoring["tokenize"] == "char"
    character_bleu = BLEU(tokenize="char", effective_order=True)
    english = report.samples[2]
    expected = character_bleu.sentence_score("The sky is blue today.", ["The sky is very blue today."]).score
    assert english["metrics"]["tuned"]["bleu"] == pytest.approx(expected)
    # Alone, that pair would have been scored on words: a different number.
    alone = sample_text_metrics("The sky is blue today.", "The sky is very blue today.")
    assert alone["bleu"] != pytest.approx(expected)
    # The corpus score's own per-sample list agrees with the samples.
    corpus = text_metrics([a["tuned"] for a in answers], [i.reference for i in items], per_sample=True)
    assert [s["metrics"]["tuned"]["bleu"] for s in report.samples] == pytest.approx(
        [s["bleu"] for s in corpus["samples"]]
    )


def test_texts_are_nfkc_normalised_before_scoring():
    full_width = text_metrics(["ＴＨＥ ｃａｔ ｓａｔ ｏｎ ｔｈｅ ｍａｔ"], ["THE cat sat on the mat"], per_sample=True)
    assert full_width["bleu"] == pytest.approx(100) and full_width["chrf"] == pytest.approx(100)
    assert full_width["rouge_l"] == pytest.approx(100)
    half_width = sample_text_metrics("ｺﾝﾆﾁﾊ､ｾｶｲ", "コンニチハ、セカイ", tokenize="char")
    assert half_width == pytest.approx({"bleu": 100, "chrf": 100, "rouge_l": 100})
    # Both sides: a full-width reference against a plain answer.
    assert text_metrics(["Price: 100 yen"], ["Ｐｒｉｃｅ： １００ ｙｅｎ"])["bleu"] == pytest.approx(100)
    assert metrics.normalise_text("ｶﾞ") == "ガ" and metrics.normalise_text(None) == ""


def test_the_evaluated_turn_is_the_reference_and_carries_the_weight():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello", "weight": 1},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "weight": 0},
    ]
    conversation = EvalItem(id=1, messages=messages).conversation()
    assert [m.get("weight") for m in conversation if m["role"] == "assistant"] == [0, None]
    assert conversation[-1] == {"role": "assistant", "content": "4"}


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


def test_perplexity_covers_the_evaluated_turn_only(tiny_model):
    import torch
    import torch.nn.functional as F

    from training.engine.data import IGNORE, encode
    from training.engine.interface import TrainExample

    model, tokenizer = tiny_model
    messages = [
        {"role": "user", "content": "Tell me a long story about a cat."},
        {"role": "assistant", "content": "Once upon a time a cat lived in a very old house by the sea."},
        {"role": "user", "content": "And then?"},
        {"role": "assistant", "content": "It slept."},
    ]
    conversation = EvalItem(id=1, messages=messages).conversation()
    value = metrics.perplexity(model, tokenizer, [conversation], 256)

    def nll(labels: list[int], ids: list[int]) -> tuple[float, int]:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
        targets = torch.tensor(labels[1:])
        keep = targets != IGNORE
        return float(F.cross_entropy(logits[keep], targets[keep], reduction="sum")), int(keep.sum())

    both = encode(tokenizer, TrainExample(messages=messages), 256)
    last = encode(tokenizer, TrainExample(messages=conversation), 256)
    total, count = nll(last.labels, last.input_ids)
    assert 0 < count < both.trainable_tokens  # the earlier answer is context, not scored
    assert value == pytest.approx(math.exp(total / count), rel=1e-4)
    # A cut that leaves none of the evaluated turn leaves the conversation out (not an earlier turn).
    cut = len(encode(tokenizer, TrainExample(messages=messages[:2]), 256).input_ids)
    assert metrics.perplexity(model, tokenizer, [conversation], cut) is None
