"""Automatic metrics of generated answers against the references of a held-out set.

Plain Python (no Django): lists of texts in, numbers out.

- Text overlap: corpus BLEU and chrF (sacrebleu) and ROUGE-L F-measure (rouge-score), all on a
  0..100 scale, through the local `evaluate` modules in `modules/` (loaded by path: the Hugging
  Face Hub is never asked). Texts are NFKC-normalised first (full-width letters, half-width kana).
  BLEU's tokenizer is chosen once, from the references (`choose_tokenize`): sacrebleu's "char"
  when at least half of them hold Japanese or Chinese letters, else "13a"; an evaluation passes
  its one choice to every system, every group and every per-sample score. ROUGE-L makes each
  Japanese or Chinese character a token (rouge-score's own tokenizer would drop them); chrF works
  on characters anyway. See the module files for the details.
- Degeneration: repeated n-grams within an answer, distinct n-grams over all answers, lengths.
- Classification: the label an answer names, accuracy, macro-F1 and per-label scores.
- Structured output: JSON or SQL validity (the rules of curation/quality/formats.py, which needs
  Django's translations and so is not imported), JSON-schema validity, exact match.
- Perplexity of the reference answers under a model, and the gap between validation and training
  loss.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import threading
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm.toolcalls import reject_constant, schema_problem, schema_validator
from text import cjk

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

MODULES_DIR = Path(__file__).resolve().parent / "modules"
TEXT_METRICS = ("bleu", "chrf", "rouge_l")
STRUCTURED_FORMATS = ("json", "sql")


_loaded: dict[str, Any] = {}
_load_lock = threading.Lock()
# An evaluate module keeps the batch it is computing on itself: one computation at a time.
_compute_lock = threading.Lock()


# --- Text overlap -------------------------------------------------------------------------------


def load_metric(name: str) -> Any:
    """The local `evaluate` module for "bleu", "chrf" or "rouge_l", loaded once per process.

    Loaded by path, kept in memory (no Arrow cache files), with evaluate's offline mode set
    when nothing else set it: a local module needs no network, and none is tried.
    """
    if name not in TEXT_METRICS:
        raise ValueError(f"Unknown metric {name!r}; the metrics are {', '.join(TEXT_METRICS)}.")
    with _load_lock:
        if name not in _loaded:
            os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
            os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
            import evaluate

            _loaded[name] = evaluate.load(str(MODULES_DIR / name), keep_in_memory=True)
        return _loaded[name]


def _texts(texts: Sequence[str | None]) -> list[str]:
    return ["" if text is None else str(text) for text in texts]


def _same_length(predictions: Sequence[Any], references: Sequence[Any]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"Each prediction needs one reference: got {len(predictions)} predictions and {len(references)} references."
        )


def _compute(name: str, predictions: list[str], references: list[str], **kwargs: Any) -> dict[str, Any]:
    metric = load_metric(name)
    with _compute_lock:
        return metric.compute(predictions=predictions, references=references, **kwargs)


def normalise_text(text: str | None) -> str:
    """The text as it is scored: NFKC (full-width Ｌａｔｉｎ is Latin, half-width ｶﾅ is カナ)."""
    return unicodedata.normalize("NFKC", "" if text is None else str(text))


def choose_tokenize(references: Sequence[str | None]) -> str:
    """BLEU's tokenizer for an evaluation, from its references alone (the answers never change it).

    "char" (sacrebleu's character tokens) when at least half of the non-blank references hold a
    Japanese or Chinese letter (kana or Han) once NFKC-normalised, else "13a" (words): "13a" would
    see a whole Japanese sentence as one word. "13a" when there is no reference.
    """
    texts = [normalise_text(text) for text in references]
    texts = [text for text in texts if text.strip()]
    cjk_count = sum(1 for text in texts if cjk.UNSPACED_CHAR.search(text))
    return "char" if texts and 2 * cjk_count >= len(texts) else "13a"


def scale(tokenize: str) -> dict[str, str]:
    """How an evaluation's text overlap was scored, to store with its results: {"tokenize",
    "bleu_unit" ("characters" or "words"), "normalization"}."""
    return {"tokenize": tokenize, "bleu_unit": "characters" if tokenize == "char" else "words", "normalization": "NFKC"}


def text_metrics(
    predictions: Sequence[str | None],
    references: Sequence[str],
    *,
    per_sample: bool = False,
    tokenize: str | None = None,
) -> dict[str, Any]:
    """Corpus BLEU, chrF and ROUGE-L (mean F-measure) of the predictions, each 0..100.

    {"bleu", "chrf", "rouge_l", "tokenize" (BLEU's tokenizer: "13a" or "char"), "count"}; with
    `per_sample`, also "samples": a {"bleu", "chrf", "rouge_l"} dict per pair (sentence scores,
    BLEU with the same tokenizer). `tokenize` None: `choose_tokenize(references)`. Texts are
    NFKC-normalised before scoring. All scores None for empty lists. A missing prediction (None)
    counts as an empty answer.
    """
    _same_length(predictions, references)
    predictions = [normalise_text(text) for text in predictions]
    references = [normalise_text(text) for text in references]
    if not predictions:
        result: dict[str, Any] = {"bleu": None, "chrf": None, "rouge_l": None, "tokenize": None, "count": 0}
        if per_sample:
            result["samples"] = []
        return result
    tokenize = tokenize or choose_tokenize(references)
    bleu = _compute("bleu", predictions, references, per_sample=per_sample, tokenize=tokenize)
    chrf = _compute("chrf", predictions, references, per_sample=per_sample)
    rouge = _compute("rouge_l", predictions, references, per_sample=per_sample)
    result = {
        "bleu": bleu["score"],
        "chrf": chrf["score"],
        "rouge_l": rouge["score"],
        "tokenize": bleu["tokenize"],
        "count": len(predictions),
    }
    if per_sample:
        result["samples"] = [
            {"bleu": b, "chrf": c, "rouge_l": r}
            for b, c, r in zip(bleu["per_sample"], chrf["per_sample"], rouge["per_sample"], strict=True)
        ]
    return result


def sample_text_metrics(prediction: str | None, reference: str, *, tokenize: str | None = None) -> dict[str, float]:
    """Sentence BLEU, chrF and ROUGE-L F-measure of one answer, each 0..100 (for the side-by-side page).

    An evaluation passes its `tokenize`, so that each sample is scored on the corpus's scale;
    without it, the tokenizer is chosen from this reference alone.
    """
    result = text_metrics([prediction], [reference], per_sample=True, tokenize=tokenize)
    return result["samples"][0]


# --- Degeneration -------------------------------------------------------------------------------


def tokens(text: str | None) -> list[str]:
    """Lower-cased words, each Japanese or Chinese character a token of its own, punctuation dropped
    (the tokens ROUGE-L compares)."""
    return cjk.words((text or "").lower())


def _ngrams(text: str | None, n: int) -> list[tuple[str, ...]]:
    if n < 1:
        raise ValueError(f"n is {n!r}; it must be at least 1.")
    words = tokens(text)
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def repetition(text: str | None, n: int = 3) -> float:
    """The share of the text's n-grams that occur more than once in it: 0.0 for an answer that never
    repeats itself, near 1.0 for one stuck in a loop; 0.0 when it has fewer than n tokens.

    "a b c a b c" has the 3-grams abc, bca, cab, abc: abc occurs twice, so 2 of 4 are repeated: 0.5.
    """
    grams = _ngrams(text, n)
    if not grams:
        return 0.0
    counts = Counter(grams)
    return sum(count for count in counts.values() if count > 1) / len(grams)


def distinct_n(texts: Sequence[str | None], n: int) -> float:
    """Distinct n-grams over all n-grams of a set of answers (distinct-n): low when the answers say
    the same things over and over; 0.0 when there is no n-gram at all."""
    grams = [gram for text in texts for gram in _ngrams(text, n)]
    if not grams:
        return 0.0
    return len(set(grams)) / len(grams)


def length_stats(texts: Sequence[str | None]) -> dict[str, Any]:
    """Lengths of the answers: {"count", "empty" (blank answers), "mean_chars", "median_chars",
    "min_chars", "max_chars", "mean_tokens"}; None for each length of an empty list."""
    texts = _texts(texts)
    chars = [len(text) for text in texts]
    words = [len(tokens(text)) for text in texts]
    return {
        "count": len(texts),
        "empty": sum(1 for text in texts if not text.strip()),
        "mean_chars": statistics.fmean(chars) if chars else None,
        "median_chars": statistics.median(chars) if chars else None,
        "min_chars": min(chars) if chars else None,
        "max_chars": max(chars) if chars else None,
        "mean_tokens": statistics.fmean(words) if words else None,
    }


# --- Classification -----------------------------------------------------------------------------


def normalise_label(text: str | None) -> str:
    """Case-folded (NFKC, so full-width letters match), punctuation turned into spaces, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = "".join(" " if unicodedata.category(char).startswith("P") else char for char in text)
    return " ".join(text.split())


def _is_word_char(char: str) -> bool:
    return (char.isalnum() or char == "_") and not cjk.is_cjk(char)


def _first_mention(text: str, label: str) -> int:
    """Where `label` first occurs in `text` as a whole word (both normalised); -1 if nowhere.

    A label is a whole word when no letter or digit touches it; Japanese and Chinese are written
    without spaces, so a CJK character next to it does not count as touching.
    """
    start = text.find(label)
    while start != -1:
        end = start + len(label)
        before = start == 0 or not (_is_word_char(text[start - 1]) and _is_word_char(label[0]))
        after = end == len(text) or not (_is_word_char(text[end]) and _is_word_char(label[-1]))
        if before and after:
            return start
        start = text.find(label, start + 1)
    return -1


def parse_label(output: str | None, labels: Sequence[str]) -> str | None:
    """The label an answer names, or None.

    First the answer that is exactly a label once case, spaces and punctuation are normalised
    ("Positive." is "positive"); else the label mentioned first as a whole word ("The sentiment
    is negative" is "negative"; at the same position the longer label wins); else None. A
    negation is not understood: "not positive" names "positive".
    """
    text = normalise_label(output)
    if not text:
        return None
    normalised = [(label, normalise_label(label)) for label in labels]
    for label, form in normalised:
        if form and text == form:
            return label
    best: tuple[int, int] | None = None
    found: str | None = None
    for label, form in normalised:
        if not form:
            continue
        position = _first_mention(text, form)
        if position >= 0 and (best is None or (position, -len(form)) < best):
            best = (position, -len(form))
            found = label
    return found


def classification_metrics(
    predicted: Sequence[str | None], gold: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-label precision, recall, F1 and support.

    {"accuracy", "macro_f1", "per_label": {label: {"precision", "recall", "f1", "support"}},
    "unparsed", "count"}. An unparsed answer (None) is wrong: it counts in the accuracy's
    denominator and as a miss of its gold label, and against no label's precision. Precision is
    None for a label never predicted, recall None for a label with no gold example; F1 is then 0
    (scikit-learn's `zero_division=0`), or None when the label was neither predicted nor gold.
    Macro-F1 averages the F1 of the labels that were predicted or gold (scikit-learn's default
    label set), so a label absent from the test set does not pull it down. Labels outside
    `labels` that occur in `gold` or `predicted` are scored too.
    """
    _same_length(predicted, gold)
    count = len(gold)
    unparsed = sum(1 for label in predicted if label is None)
    all_labels = list(dict.fromkeys([*labels, *gold, *(label for label in predicted if label is not None)]))
    per_label: dict[str, dict[str, Any]] = {}
    for label in all_labels:
        true_positive = sum(1 for p, g in zip(predicted, gold, strict=True) if p == label and g == label)
        predicted_count = sum(1 for p in predicted if p == label)
        support = sum(1 for g in gold if g == label)
        precision = true_positive / predicted_count if predicted_count else None
        recall = true_positive / support if support else None
        if precision is None and recall is None:
            f1 = None
        elif not precision or not recall:
            f1 = 0.0
        else:
            f1 = 2 * precision * recall / (precision + recall)
        per_label[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    scored = [scores["f1"] for scores in per_label.values() if scores["f1"] is not None]
    return {
        "accuracy": sum(1 for p, g in zip(predicted, gold, strict=True) if p == g) / count if count else None,
        "macro_f1": sum(scored) / len(scored) if scored else None,
        "per_label": per_label,
        "unparsed": unparsed,
        "count": count,
    }


# --- Structured output --------------------------------------------------------------------------

# A whole answer inside one Markdown code fence (as in curation/quality/formats.py): tolerated.
_FENCE = re.compile(r"\A```[\w+-]*[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL)
# Real statements that sqlparse's `get_type()` calls UNKNOWN.
_OTHER_SQL_STATEMENTS = frozenset(
    {"ANALYZE", "BEGIN", "DESC", "DESCRIBE", "EXPLAIN", "GRANT", "PRAGMA", "REVOKE", "SET", "SHOW", "USE", "VACUUM"}
)


def unfenced(text: str | None) -> str:
    """The answer without surrounding spaces and without one Markdown code fence around all of it."""
    text = (text or "").strip()
    match = _FENCE.match(text)
    if match and "```" not in match["body"]:
        return match["body"].strip()
    return text


def parse_json(text: str | None) -> tuple[bool, Any]:
    """(True, value) when the answer is one valid JSON value (a fence around it is tolerated;
    NaN and Infinity, a cut-off object or text after the value are not); else (False, None)."""
    body = unfenced(text)
    if not body:
        return False, None
    try:
        return True, json.loads(body, parse_constant=reject_constant)
    except ValueError:  # json.JSONDecodeError is a ValueError
        return False, None


def _fits(validator: Any, value: Any) -> bool:
    return schema_problem(validator, value) is None


def sql_valid(text: str | None) -> bool:
    """Whether the answer is SQL: at least one statement, each of a kind sqlparse knows (or one of
    the few it calls UNKNOWN: EXPLAIN, PRAGMA, SET...), with every parenthesis, quote and comment
    closed. A fence around it is tolerated; prose is not ("Sure! SELECT ..." is invalid)."""
    import sqlparse

    body = unfenced(text)
    statements = [statement for statement in sqlparse.parse(body) if str(statement).strip(" \t\r\n;")]
    if not statements:
        return False
    for statement in statements:
        first = statement.token_first(skip_cm=True)
        keyword = first.normalized.upper() if first is not None else ""
        if statement.get_type() == "UNKNOWN" and keyword not in _OTHER_SQL_STATEMENTS:
            return False
    from text.sql_scan import unclosed

    return unclosed(body) is None


def normalise_sql(text: str | None) -> str:
    """The SQL with keywords upper-cased, comments dropped, one space between tokens and no final
    semicolon: "select a,b from t;" and "SELECT a, b\\nFROM t" both become "SELECT a , b FROM t".
    Names and string contents keep their case."""
    import sqlparse

    formatted = sqlparse.format(unfenced(text), keyword_case="upper", strip_whitespace=True, strip_comments=True)
    parts = [token.value for statement in sqlparse.parse(formatted) for token in statement.flatten()]
    words = [part for part in parts if part.strip()]
    while words and words[-1] == ";":
        words.pop()
    return " ".join(words)


def _same_json(a: Any, b: Any) -> bool:
    """Equal JSON values: objects whatever their key order, 1 equal to 1.0, but true not equal to 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def structured_metrics(
    outputs: Sequence[str | None],
    references: Sequence[str],
    *,
    format: str = "json",
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validity and exact match of JSON or SQL answers.

    {"valid_rate": share of answers that parse; "schema_valid_rate": share that parse and fit
    `schema` (JSON with a schema only, else None); "exact_match": share equal to their
    reference; "count"}. JSON answers are compared as parsed values (key order ignored); when a
    reference is not valid JSON itself, the texts are compared. SQL answers are compared after
    `normalise_sql`. Rates are None for empty lists. A schema that is not valid raises ValueError.
    """
    if format not in STRUCTURED_FORMATS:
        raise ValueError(f"Unknown format {format!r}; use one of: {', '.join(STRUCTURED_FORMATS)}.")
    _same_length(outputs, references)
    count = len(outputs)
    validator = schema_validator(schema) if format == "json" and schema is not None else None
    valid = fitting = exact = 0
    for output, reference in zip(outputs, references, strict=True):
        if format == "json":
            ok, value = parse_json(output)
            valid += ok
            if validator is not None and ok and _fits(validator, value):
                fitting += 1
            reference_ok, reference_value = parse_json(reference)
            if reference_ok:
                exact += ok and _same_json(value, reference_value)
            else:
                exact += bool(unfenced(output)) and unfenced(output) == unfenced(reference)
        else:
            valid += sql_valid(output)
            exact += bool(unfenced(output)) and normalise_sql(output) == normalise_sql(reference)

    def rate(value: int) -> float | None:
        return value / count if count else None

    return {
        "valid_rate": rate(valid),
        "schema_valid_rate": rate(fitting) if validator is not None else None,
        "exact_match": rate(exact),
        "count": count,
    }


# --- Perplexity and loss ------------------------------------------------------------------------


def _virtual_tokens(model: Any) -> int:
    """Positions that prompt tuning and P-tuning put before the input (as training.engine.modeling's
    `virtual_tokens`, which imports the training configuration and with it Django)."""
    active = getattr(model, "active_peft_config", None)
    if active is None or not getattr(active, "is_prompt_learning", False):
        return 0
    if str(getattr(active, "peft_type", "")).endswith("PREFIX_TUNING"):
        return 0
    return int(active.num_virtual_tokens)


def _last_turn(
    tokenizer: Any, conversation: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None, max_seq_length: int
) -> Any:
    """The conversation encoded as for training, cut at `max_seq_length`, with labels only on its
    last assistant turn (the last run of trained tokens of the whole conversation, so that a cut
    never passes an earlier turn off as the last); None when none of that turn is left."""
    from dataclasses import replace

    from training.engine.data import IGNORE, encode
    from training.engine.interface import TrainExample

    example = TrainExample(messages=[dict(m) for m in conversation])
    if tools:
        example.tools = list(tools)
    whole = encode(tokenizer, example, 10**9)
    if whole is None:
        return None
    labels = whole.labels
    start = len(labels)
    while start > 0 and labels[start - 1] == IGNORE:
        start -= 1
    while start > 0 and labels[start - 1] != IGNORE:
        start -= 1
    ids = whole.input_ids[:max_seq_length]
    kept = [IGNORE if index < start else label for index, label in enumerate(labels[:max_seq_length])]
    item = replace(whole, input_ids=ids, labels=kept, length=len(ids))
    return item if item.trainable_tokens else None


def perplexity(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[dict[str, Any]]],
    max_seq_length: int,
    *,
    batch_size: int = 4,
    tools: Sequence[list[dict[str, Any]] | None] | None = None,
) -> float | None:
    """Perplexity of the reference answers: exp of the mean negative log-likelihood per token.

    Each conversation is encoded as for training (`training.engine.data.encode`: the chat template,
    cut at `max_seq_length`), and only the tokens of its last assistant turn count (the turn being
    evaluated; earlier assistant turns are context, as the prompt is). The mean is over all
    answer tokens together, not per conversation. None when no conversation has an answer token
    (a last turn cut off entirely by `max_seq_length` is left out). `tools`, one list per
    conversation, go to the chat template as in training.
    """
    import torch
    import torch.nn.functional as F

    from training.engine.data import IGNORE, batch_order, collate

    tools = list(tools) if tools is not None else [None] * len(conversations)
    encoded = [
        item
        for conversation, functions in zip(conversations, tools, strict=True)
        if (item := _last_turn(tokenizer, conversation, functions, max_seq_length)) is not None
    ]
    if not encoded:
        return None
    device = next(model.parameters()).device
    offset = _virtual_tokens(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total = 0.0
    count = 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for indices in batch_order([item.length for item in encoded], batch_size, seed=0, epoch=0, shuffle=False):
                batch = collate([encoded[index] for index in indices], pad_id=pad_id)
                labels = batch.labels.to(device)
                output = model(
                    input_ids=batch.input_ids.to(device),
                    attention_mask=batch.attention_mask.to(device),
                    use_cache=False,
                )
                # Position p predicts token p + 1.
                logits = output.logits[:, offset:, :][:, :-1, :]
                targets = labels[:, 1:]
                keep = targets != IGNORE
                total += float(F.cross_entropy(logits[keep].float(), targets[keep], reduction="sum"))
                count += int(keep.sum())
    finally:
        if was_training:
            model.train()
    if not count:
        return None
    mean = total / count
    return math.exp(mean) if mean < 700 else math.inf


def loss_gap(train_loss: float | None, val_loss: float | None) -> float | None:
    """Validation loss minus training loss: near 0 when the model does as well on unseen examples,
    growing as it memorises the training set. None when either is missing or not finite."""
    if train_loss is None or val_loss is None:
        return None
    if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
        return None
    return val_loss - train_loss
