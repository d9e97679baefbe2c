"""The automatic metrics: text overlap through the local evaluate modules, degeneration,
classification, structured output, perplexity. No database, no network."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from text import cjk
from training.evaluation import metrics
from training.evaluation.metrics import (
    classification_metrics,
    distinct_n,
    length_stats,
    load_metric,
    loss_gap,
    normalise_sql,
    parse_json,
    parse_label,
    perplexity,
    repetition,
    sample_text_metrics,
    sql_valid,
    structured_metrics,
    text_metrics,
    tokens,
)

ROOT = Path(__file__).resolve().parents[2]

PREDICTIONS = [
    "The cat sat on the mat while the dog slept by the door.",
    "Paris is the capital and the largest city of France.",
    "Press the reset button for ten seconds, then wait.",
]
REFERENCES = [
    "The cat was sitting on the mat and the dog slept near the door.",
    "Paris is the capital of France and its largest city.",
    "Hold the reset button for ten seconds and wait.",
]
JA_PREDICTION = "今日は良い天気です。"
JA_REFERENCE = "今日は悪い天気です。"


# --- Text overlap -------------------------------------------------------------------------------


def test_identical_texts_score_100_on_every_metric():
    scores = text_metrics(PREDICTIONS, PREDICTIONS)
    assert scores["bleu"] == pytest.approx(100)
    assert scores["chrf"] == pytest.approx(100)
    assert scores["rouge_l"] == pytest.approx(100)
    assert scores["tokenize"] == "13a"
    assert scores["count"] == 3


def test_identical_short_answers_score_100_too():
    # Fewer than four tokens: standard corpus BLEU has no 4-gram and would give 0.
    assert sacrebleu.corpus_bleu(["yes"], [["yes"]]).score == 0
    assert text_metrics(["yes", "no"], ["yes", "no"])["bleu"] == pytest.approx(100)


def test_disjoint_texts_score_0_on_every_metric():
    scores = text_metrics(["aaa bbb ccc ddd eee"], ["xxx yyy zzz www vvv"])
    assert scores == {"bleu": 0.0, "chrf": 0.0, "rouge_l": 0.0, "tokenize": "13a", "count": 1}


def test_scores_are_sacrebleus_and_rouge_scores_own():
    scores = text_metrics(PREDICTIONS, REFERENCES)
    # The corpus has 4-grams, so effective order changes nothing: standard sacrebleu values.
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(PREDICTIONS, [REFERENCES]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(PREDICTIONS, [REFERENCES]).score)
    assert 0 < scores["bleu"] < 100
    # On ASCII text the module's tokenizer gives rouge-score's own tokens.
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(PREDICTIONS, REFERENCES, strict=True))
    assert scores["rouge_l"] == pytest.approx(100 * expected / len(PREDICTIONS))


def test_per_sample_scores_are_sentence_scores():
    scores = text_metrics(PREDICTIONS, REFERENCES, per_sample=True)
    assert len(scores["samples"]) == 3
    bleu = BLEU(effective_order=True)
    chrf = CHRF()
    for sample, prediction, reference in zip(scores["samples"], PREDICTIONS, REFERENCES, strict=True):
        assert sample["bleu"] == pytest.approx(bleu.sentence_score(prediction, [reference]).score)
        assert sample["chrf"] == pytest.approx(chrf.sentence_score(prediction, [reference]).score)
        assert 0 < sample["rouge_l"] < 100
    one = sample_text_metrics(PREDICTIONS[1], REFERENCES[1])
    assert one == pytest.approx(scores["samples"][1])
    assert sample_text_metrics("the cat", "the cat") == pytest.approx({"bleu": 100, "chrf": 100, "rouge_l": 100})


def test_japanese_pair_uses_character_tokens():
    scores = text_metrics([JA_PREDICTION], [JA_REFERENCE])
    assert scores["tokenize"] == "char"
    expected = BLEU(tokenize="char", effective_order=True).corpus_score([JA_PREDICTION], [[JA_REFERENCE]]).score
    assert scores["bleu"] == pytest.approx(expected)
    # "13a" sees each sentence as one word: no credit at all for one character in nine.
    assert BLEU(tokenize="13a").corpus_score([JA_PREDICTION], [[JA_REFERENCE]]).score == 0
    assert 0 < scores["bleu"] < 100
    assert scores["chrf"] == pytest.approx(CHRF().corpus_score([JA_PREDICTION], [[JA_REFERENCE]]).score)
    # rouge-score's own tokenizer drops every Japanese character; here each one is a token:
    # 今日は?い天気です, 8 of 9 characters in common, so F = 8/9.
    assert rouge_scorer.RougeScorer(["rougeL"]).score(JA_REFERENCE, JA_PREDICTION)["rougeL"].fmeasure == 0
    assert scores["rouge_l"] == pytest.approx(100 * 8 / 9)
    identical = sample_text_metrics(JA_REFERENCE, JA_REFERENCE)
    assert identical == pytest.approx({"bleu": 100, "chrf": 100, "rouge_l": 100})


def test_tokens_split_cjk_characters_and_keep_other_words():
    assert tokens("Shikomi は LLM の データ です!") == ["shikomi", "は", "llm", "の", "デ", "ー", "タ", "で", "す"]
    assert tokens("Élève naïve, don't_stop") == ["élève", "naïve", "don", "t", "stop"]
    sentence = "The quick brown fox, at 10:30, jumped over the lazy dog's tail!"
    assert tokens(sentence) == rouge_scorer.tokenizers.DefaultTokenizer().tokenize(sentence)


def test_the_modules_tokenise_as_this_module():
    rouge = load_metric("rouge_l")
    rouge_module = sys.modules[type(rouge).__module__]
    text = "Shikomi は LLM の データ です! Ｆｕｌｌ width, ﾊﾝｶｸ 𠀋"
    assert rouge_module.tokenize(text) == tokens(text)
    bleu_module = sys.modules[type(load_metric("bleu")).__module__]
    assert bleu_module.CJK.pattern == cjk.UNSPACED_CHAR.pattern
    assert bleu_module.choose_tokenizer(["plain", "テスト"]) == "char"
    assert bleu_module.choose_tokenizer(["plain", "한국어"]) == "13a"


def test_empty_lists_give_no_scores():
    assert text_metrics([], []) == {"bleu": None, "chrf": None, "rouge_l": None, "tokenize": None, "count": 0}
    assert text_metrics([], [], per_sample=True)["samples"] == []


def test_a_missing_prediction_is_an_empty_answer():
    scores = text_metrics([None, PREDICTIONS[0]], [REFERENCES[0], REFERENCES[0]], per_sample=True)
    assert scores["samples"][0] == {"bleu": 0.0, "chrf": 0.0, "rouge_l": 0.0}


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="one reference"):
        text_metrics(["a"], ["a", "b"])


def test_the_modules_load_with_evaluate_by_folder_and_by_file():
    import evaluate

    folder = ROOT / "training" / "evaluation" / "modules"
    assert metrics.MODULES_DIR == folder
    by_folder = evaluate.load(str(folder / "chrf"), keep_in_memory=True)
    by_file = evaluate.load(str(folder / "rouge_l" / "rouge_l.py"), keep_in_memory=True)
    assert by_folder.name == "chrf"
    assert by_file.name == "rouge_l"
    assert by_folder.compute(predictions=["abc def"], references=["abc def"])["score"] == pytest.approx(100)
    assert load_metric("bleu") is load_metric("bleu")
    with pytest.raises(ValueError, match="Unknown metric"):
        load_metric("meteor")


NO_NETWORK = """
import json, os, socket, sys

def refuse(*args, **kwargs):
    raise OSError("no network in this test")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from training.evaluation.metrics import load_metric, text_metrics

scores = text_metrics(["the cat sat on the mat", "今日は良い天気"], ["the cat sat on the mat", "今日は良い天気"])
print(json.dumps({
    "scores": scores,
    "names": [load_metric(name).name for name in ("bleu", "chrf", "rouge_l")],
    "offline": os.environ.get("HF_EVALUATE_OFFLINE"),
}))
"""


def test_the_modules_load_by_path_without_network(tmp_path):
    """A fresh interpreter with every socket refusing, an empty Hugging Face cache and no offline
    variable set: the modules load (copied into the empty cache) and compute."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "DJANGO_"))}
    env.update(HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", NO_NETWORK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["scores"]["bleu"] == pytest.approx(100)
    assert result["scores"]["chrf"] == pytest.approx(100)
    assert result["scores"]["rouge_l"] == pytest.approx(100)
    assert result["scores"]["tokenize"] == "char"
    assert result["names"] == ["bleu", "chrf", "rouge_l"]
    assert result["offline"] == "1"
    copied = {path.name for path in (tmp_path / "hf" / "modules" / "evaluate_modules" / "metrics").iterdir()}
    assert {"bleu", "chrf", "rouge_l"} <= copied


def test_metrics_import_without_django():
    code = (
        "import sys, training.evaluation.metrics, training.evaluation.stats;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'evaluate', 'torch')))"
    )
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- Degeneration -------------------------------------------------------------------------------


def test_repetition():
    # 3-grams abc, bca, cab, abc: abc twice, so 2 of 4 are repeated.
    assert repetition("a b c a b c") == 0.5
    assert repetition("The cat sat on the mat.") == 0.0
    assert repetition("go go go go", n=1) == 1.0
    # 2-grams: (go, go) three times and (go, home) once.
    assert repetition("go go go go home", n=2) == 0.75
    assert repetition("too short", n=3) == 0.0
    assert repetition("", n=3) == 0.0
    assert repetition("ははははは", n=2) == 1.0
    with pytest.raises(ValueError):
        repetition("a b", n=0)


def test_distinct_n():
    # Unigrams a, b, c, a, b, d: 4 distinct of 6.
    assert distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    # Bigrams ab, bc, ab, bd: 3 distinct of 4.
    assert distinct_n(["a b c", "A, b d"], 2) == pytest.approx(3 / 4)
    assert distinct_n(["same answer", "same answer"], 2) == 0.5
    assert distinct_n(["", "x"], 2) == 0.0
    assert distinct_n([], 1) == 0.0


def test_length_stats():
    stats = length_stats(["abc", "", "hello world", None])
    assert stats == {
        "count": 4,
        "empty": 2,
        "mean_chars": pytest.approx((3 + 0 + 11 + 0) / 4),
        "median_chars": 1.5,
        "min_chars": 0,
        "max_chars": 11,
        "mean_tokens": pytest.approx((1 + 0 + 2 + 0) / 4),
    }
    assert length_stats([])["mean_chars"] is None


# --- Classification -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Positive.", "positive"),
        ("  NEGATIVE ", "negative"),
        ("The sentiment is neutral, I think.", "neutral"),
        ("Label: **negative**", "negative"),
        ("negative or positive", "negative"),
        ("positively wonderful", None),
        ("I cannot tell.", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_label(output, expected):
    assert parse_label(output, ["positive", "negative", "neutral"]) == expected


def test_parse_label_prefers_an_exact_match_then_the_earliest_and_longest_mention():
    labels = ["spam", "not spam"]
    assert parse_label("Not spam", labels) == "not spam"
    assert parse_label("This is not spam.", labels) == "not spam"
    assert parse_label("Spam!", labels) == "spam"
    assert parse_label("Answer: sci fi", ["Sci-Fi", "Drama"]) == "Sci-Fi"
    assert parse_label("ＰＯＳＩＴＩＶＥ", ["positive"]) == "positive"
    # Japanese is written without spaces: a label inside a sentence still counts.
    assert parse_label("これは否定的なレビューです。", ["肯定", "否定"]) == "否定"


def test_classification_metrics_by_hand():
    gold = ["a", "a", "b", "b", "c"]
    predicted = ["a", "b", "b", None, "c"]
    result = classification_metrics(predicted, gold, ["a", "b", "c", "d"])
    # Right on 3 of 5. a: P 1/1, R 1/2, F1 2/3. b: P 1/2, R 1/2, F1 1/2. c: 1, 1, 1.
    # d: neither gold nor predicted, left out of the macro average: (2/3 + 1/2 + 1) / 3.
    assert result["accuracy"] == pytest.approx(0.6)
    assert result["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert result["unparsed"] == 1
    assert result["count"] == 5
    assert result["per_label"]["a"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert result["per_label"]["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert result["per_label"]["c"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert result["per_label"]["d"] == {"precision": None, "recall": None, "f1": None, "support": 0}


def test_classification_metrics_agree_with_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    gold = ["x", "y", "z", "x", "y", "x", "z", "z"]
    predicted = ["x", "x", "z", None, "y", "w", "z", "x"]
    result = classification_metrics(predicted, gold, ["x", "y", "z"])
    filled = [label if label is not None else "(none)" for label in predicted]
    used = sorted({*gold, *(label for label in predicted if label is not None)})
    assert result["accuracy"] == pytest.approx(accuracy_score(gold, filled))
    assert result["macro_f1"] == pytest.approx(f1_score(gold, filled, labels=used, average="macro", zero_division=0))
    # "w" is not a label, but it was predicted: scored with precision 0.
    assert result["per_label"]["w"] == {"precision": 0.0, "recall": None, "f1": 0.0, "support": 0}


def test_classification_metrics_of_nothing():
    result = classification_metrics([], [], ["a"])
    assert result["accuracy"] is None
    assert result["macro_f1"] is None


# --- Structured output --------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
}


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ('{"name": "Ann", "age": 3}', True),
        ('```json\n{"name": "Ann", "age": 3}\n```', True),
        ("```\n[1, 2]\n```", True),
        ('{"name": "Ann", "age": 3', False),  # cut off
        ('{"name": "Ann', False),  # cut off inside a string
        ('{"value": NaN}', False),
        ('{"a": 1} and more', False),
        ('Sure! {"a": 1}', False),
        ("", False),
        (None, False),
    ],
)
def test_json_validity(text, valid):
    assert parse_json(text)[0] is valid


def test_structured_metrics_json():
    outputs = [
        '{"age": 3, "name": "Ann"}',  # valid, fits, equal to the reference but for key order
        '```json\n{"name": "Bob", "age": -1}\n```',  # valid, does not fit (age < 0)
        '{"name": "Cy", "age": 5',  # cut off
        '{"name": "Di", "age": 7.0}',  # valid; fits: JSON schema counts 7.0 as an integer
    ]
    references = [
        '{"name": "Ann", "age": 3}',
        '{"name": "Bob", "age": 1}',
        '{"name": "Cy", "age": 5}',
        '{"name": "Di", "age": 7}',
    ]
    result = structured_metrics(outputs, references, format="json", schema=SCHEMA)
    assert result["valid_rate"] == 0.75
    # Answers 1 and 4 fit.
    assert result["schema_valid_rate"] == 0.5
    # Key order is ignored and 7.0 equals 7; answer 2 differs and answer 3 does not parse.
    assert result["exact_match"] == 0.5
    assert result["count"] == 4
    assert structured_metrics(outputs, references, format="json")["schema_valid_rate"] is None


def test_json_exact_match_tells_true_from_1():
    result = structured_metrics(['{"a": true}', '{"a": [1, 2]}'], ['{"a": 1}', '{"a": [2, 1]}'], format="json")
    assert result["exact_match"] == 0.0


def test_an_invalid_schema_is_refused():
    with pytest.raises(ValueError, match="schema is not valid"):
        structured_metrics(["{}"], ["{}"], format="json", schema={"type": "no-such-type"})


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("SELECT name FROM users WHERE id = 1;", True),
        ("```sql\nselect count(*) from orders\n```", True),
        ("SELECT 1; SELECT 2;", True),
        ("EXPLAIN SELECT 1", True),
        ("Sure! Here is the query: SELECT 1", False),
        ("SELECT (a FROM t", False),
        ("SELECT 'open FROM t", False),
        ("SELECT a /* comment", False),
        ("", False),
    ],
)
def test_sql_validity(text, valid):
    assert sql_valid(text) is valid


def test_structured_metrics_sql():
    outputs = ["select a,b from t where x=1;", "SELECT a FROM u", "SELECT (a FROM t"]
    references = ["SELECT a, b\nFROM t WHERE x = 1", "SELECT a FROM t", "SELECT a FROM t"]
    assert normalise_sql(outputs[0]) == normalise_sql(references[0]) == "SELECT a , b FROM t WHERE x = 1"
    result = structured_metrics(outputs, references, format="sql")
    assert result["valid_rate"] == pytest.approx(2 / 3)
    assert result["exact_match"] == pytest.approx(1 / 3)
    assert result["schema_valid_rate"] is None


def test_structured_metrics_of_nothing_and_unknown_formats():
    assert structured_metrics([], [], format="sql") == {
        "valid_rate": None,
        "schema_valid_rate": None,
        "exact_match": None,
        "count": 0,
    }
    with pytest.raises(ValueError, match="Unknown format"):
        structured_metrics(["a"], ["a"], format="yaml")


# --- Perplexity and loss ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    """The session's tiny random Llama (tests/conftest.py) with the embedded SmolLM2 tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


def _conversation(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def test_perplexity_is_exp_of_the_mean_loss_on_answer_tokens(tiny_model):
    import torch
    import torch.nn.functional as F

    from training.engine.data import IGNORE, encode
    from training.engine.interface import TrainExample

    model, tokenizer = tiny_model
    conversations = [
        _conversation("What is 2 plus 2?", "2 plus 2 is 4."),
        _conversation("Name a colour, please, any colour at all.", "Blue."),
        _conversation("Say hello.", "Hello! How can I help you today?"),
    ]
    model.train()
    value = perplexity(model, tokenizer, conversations, max_seq_length=256, batch_size=2)
    assert model.training  # put back as it was
    total = 0.0
    count = 0
    with torch.no_grad():
        for conversation in conversations:
            item = encode(tokenizer, TrainExample(messages=conversation), 256)
            logits = model(input_ids=torch.tensor([item.input_ids])).logits[0, :-1]
            targets = torch.tensor(item.labels[1:])
            keep = targets != IGNORE
            total += float(F.cross_entropy(logits[keep], targets[keep], reduction="sum"))
            count += int(keep.sum())
    assert count < sum(len(encode(tokenizer, TrainExample(messages=c), 256).input_ids) for c in conversations)
    assert value == pytest.approx(math.exp(total / count), rel=1e-4)
    # An untrained model spreads its guesses: perplexity in the order of the vocabulary.
    assert 1_000 < value < 10 * len(tokenizer)
    assert perplexity(model, tokenizer, [[{"role": "user", "content": "No answer."}]], 256) is None
    assert perplexity(model, tokenizer, [], 256) is None


def test_loss_gap():
    assert loss_gap(1.25, 1.5) == pytest.approx(0.25)
    assert loss_gap(None, 1.0) is None
    assert loss_gap(1.0, float("nan")) is None
