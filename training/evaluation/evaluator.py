"""The evaluation of a trained run on held-out examples: what the base model, the base model
prompted with a few training examples ("prompt it first"), and the tuned model answer, with the
same decoding settings, and the metrics of `training.evaluation.metrics` over those answers.

Plain Python (no Django): the Huey task turns the frozen test split into `EvalItem`s, calls
`evaluate_run()` and stores the `EvalReport`.

The prompt of an item is every message before its last assistant message; the reference is
that message's content (a classification item without an answer has its label as reference).
For an adapter run, the base model is the same model with the adapter disabled (one copy of
the weights in memory); for a full fine-tune, the base model is loaded beside it.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.evaluation import metrics

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

SYSTEMS = ("base", "few_shot", "tuned")
KINDS = ("chat", "classification", "structured", "style")
LEAK_IDS_SHOWN = 20
DEFAULT_MAX_SEQ_LENGTH = 1024


class EvaluationLeak(ValueError):
    """Test items that were also in the run's training snapshot: their scores would flatter the model."""

    def __init__(self, ids: Sequence[int]):
        self.ids = list(ids)
        shown = ", ".join(str(item) for item in self.ids[:LEAK_IDS_SHOWN])
        more = len(self.ids) - LEAK_IDS_SHOWN
        if more > 0:
            shown += f" and {more} more"
        super().__init__(
            f"{len(self.ids)} test example(s) were in the run's training data: {shown}. "
            "Evaluate on examples the model has not been trained on."
        )


@dataclass
class EvalItem:
    id: int
    messages: list[dict[str, Any]]
    label: str | None = None
    source: str = ""

    def _last_answer(self) -> int | None:
        for index in range(len(self.messages) - 1, -1, -1):
            if self.messages[index].get("role") == "assistant":
                return index
        return None

    @property
    def prompt_messages(self) -> list[dict[str, Any]]:
        """Every message before the last assistant message (all of them when there is none)."""
        index = self._last_answer()
        chosen = self.messages if index is None else self.messages[:index]
        return [dict(message) for message in chosen]

    @property
    def reference(self) -> str:
        index = self._last_answer()
        if index is None:
            return self.label or ""
        return str(self.messages[index].get("content") or "")

    @property
    def prompt_text(self) -> str:
        """The last user message of the prompt (what a person reads as "the question")."""
        for message in reversed(self.prompt_messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""

    @property
    def gold_label(self) -> str:
        return self.label if self.label is not None else self.reference

    def conversation(self) -> list[dict[str, Any]]:
        """The prompt and the reference as the answer (for the perplexity of the reference)."""
        return [*self.prompt_messages, {"role": "assistant", "content": self.reference}]


@dataclass
class Decoding:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0: greedy; above 0: sampled, seeded with `seed`
    batch_size: int = 8
    seed: int = 0


@dataclass
class EvalReport:
    samples: list[dict[str, Any]] = field(default_factory=list)
    overall: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_label: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    by_source: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    seconds: float = 0.0
    stopped: bool = False
    device: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "overall": self.overall,
            "by_label": self.by_label,
            "by_source": self.by_source,
            "seconds": self.seconds,
            "stopped": self.stopped,
            "device": self.device,
        }


# --- Prompts and checks -------------------------------------------------------------------------


def few_shot_prompt(prompt_messages: Sequence[dict[str, Any]], shots: Sequence[EvalItem]) -> list[dict[str, Any]]:
    """The prompt with each shot as user/assistant turns (the shot's turns without its system
    message, then its reference) placed after the prompt's leading system message(s), before
    its first user turn. The caller chooses how many shots (k) and which."""
    prompt = [dict(message) for message in prompt_messages]
    head = 0
    while head < len(prompt) and prompt[head].get("role") == "system":
        head += 1
    turns: list[dict[str, Any]] = []
    for shot in shots:
        shot_turns = [message for message in shot.prompt_messages if message.get("role") != "system"]
        if not shot_turns:
            continue
        turns.extend(shot_turns)
        turns.append({"role": "assistant", "content": shot.reference})
    return [*prompt[:head], *turns, *prompt[head:]]


def check_no_leak(test_ids: Sequence[int], training_ids: Sequence[int]) -> None:
    """EvaluationLeak naming the test items that are also training items."""
    training = set(training_ids)
    leaked = [item for item in dict.fromkeys(test_ids) if item in training]
    if leaked:
        raise EvaluationLeak(leaked)


# --- Generation ---------------------------------------------------------------------------------


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    lines = [f"{message.get('role', '')}: {message.get('content') or ''}\n" for message in messages]
    return "".join(lines) + "assistant: "


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def generate(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[list[dict[str, Any]]],
    decoding: Decoding,
    *,
    seed: int = 0,
) -> list[str]:
    """One answer per conversation, generated in one left-padded batch, special tokens stripped."""
    import torch

    if not conversations:
        return []
    templated = bool(getattr(tokenizer, "chat_template", None))
    texts = [_render(tokenizer, list(conversation)) for conversation in conversations]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not templated)
    finally:
        tokenizer.padding_side = side
    device = _device(model)
    input_ids = encoded["input_ids"].to(device)
    attention_mask = encoded["attention_mask"].to(device)
    options: dict[str, Any] = {
        "max_new_tokens": decoding.max_new_tokens,
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    }
    if decoding.temperature > 0:
        options.update(do_sample=True, temperature=float(decoding.temperature))
    else:
        options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if tokenizer.eos_token_id is not None:
        options["eos_token_id"] = tokenizer.eos_token_id
    with torch.inference_mode():
        if decoding.temperature > 0:
            torch.manual_seed(seed)
        output = model.generate(input_ids=input_ids, attention_mask=attention_mask, **options)
    new_tokens = output[:, input_ids.shape[1] :]
    return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


# --- Loading ------------------------------------------------------------------------------------


@dataclass
class _Models:
    tokenizer: Any
    tuned: Any
    base: Any  # the base model, or None when it is the tuned model with its adapter disabled
    base_tokenizer: Any
    adapter: bool
    max_seq_length: int

    def base_context(self) -> contextlib.AbstractContextManager:
        return self.tuned.disable_adapter() if self.adapter else contextlib.nullcontext()

    def base_model(self) -> Any:
        return self.tuned.get_base_model() if self.adapter else self.base


def _load(output_dir: Path) -> _Models:
    from training.engine.modeling import is_adapter, load_base, load_trained, read_run

    run = read_run(output_dir)
    tokenizer, tuned = load_trained(output_dir)
    config = run.get("config") or {}
    max_seq_length = int(config.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH)
    if is_adapter(tuned):
        return _Models(tokenizer, tuned, None, tokenizer, True, max_seq_length)
    base_tokenizer, base, _ = load_base(run.get("base_model", ""), method="lora", device=str(_device(tuned)))
    base_tokenizer.padding_side = "left"
    base.eval()
    return _Models(tokenizer, tuned, base, base_tokenizer, False, max_seq_length)


# --- Metrics ------------------------------------------------------------------------------------


def _sample_metrics(output: str, reference: str) -> dict[str, Any]:
    scores: dict[str, Any] = dict(metrics.sample_text_metrics(output, reference))
    scores["repetition"] = metrics.repetition(output)
    scores["length_chars"] = len(output)
    scores["length_tokens"] = len(metrics.tokens(output))
    return scores


def _text_scores(outputs: list[str], references: list[str]) -> dict[str, Any]:
    result = metrics.text_metrics(outputs, references)
    result["repetition"] = statistics.fmean(metrics.repetition(text) for text in outputs) if outputs else None
    return result


def _group_scores(samples: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    references = [sample["reference"] for sample in samples]
    scores: dict[str, dict[str, Any]] = {}
    for system in SYSTEMS:
        outputs = [sample["outputs"][system] for sample in samples]
        result = _text_scores(outputs, references)
        if kind == "classification":
            hits = [sample["parsed"][system] == sample["gold"] for sample in samples]
            result["accuracy"] = sum(hits) / len(hits) if hits else None
        scores[system] = result
    return scores


def _overall(
    samples: list[dict[str, Any]],
    kind: str,
    labels: Sequence[str],
    structured_format: str,
    schema: dict[str, Any] | None,
) -> dict[str, dict[str, Any]]:
    references = [sample["reference"] for sample in samples]
    overall: dict[str, dict[str, Any]] = {}
    for system in SYSTEMS:
        outputs = [sample["outputs"][system] for sample in samples]
        result = _text_scores(outputs, references)
        result["distinct_1"] = metrics.distinct_n(outputs, 1)
        result["distinct_2"] = metrics.distinct_n(outputs, 2)
        result["length"] = metrics.length_stats(outputs)
        result["perplexity"] = None
        if kind == "classification":
            result["classification"] = metrics.classification_metrics(
                [sample["parsed"][system] for sample in samples], [sample["gold"] for sample in samples], labels
            )
        if kind == "structured":
            result["structured"] = metrics.structured_metrics(
                outputs, references, format=structured_format, schema=schema
            )
        overall[system] = result
    return overall


def _grouped(samples: list[dict[str, Any]], key: str, kind: str) -> dict[str, dict[str, dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        value = sample.get(key)
        if value is None or value == "":
            continue
        groups.setdefault(str(value), []).append(sample)
    return {value: _group_scores(members, kind) for value, members in sorted(groups.items())}


# --- The evaluation -----------------------------------------------------------------------------


def evaluate_run(
    *,
    output_dir: Path,
    items: list[EvalItem],
    shots: list[EvalItem],
    decoding: Decoding,
    kind: str,
    labels: Sequence[str] = (),
    structured_format: str = "json",
    schema: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> EvalReport:
    """Generate the base, few-shot and tuned answers of every item and score them.

    Batches of `decoding.batch_size` items; after each, `progress(done, total)`. `should_stop()`
    is asked before each batch: when true, the report covers the items done so far, with
    `stopped=True` and no perplexity. Classification labels default to the items' labels.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown evaluation kind {kind!r}; the kinds are {', '.join(KINDS)}.")
    if decoding.batch_size < 1 or decoding.max_new_tokens < 1:
        raise ValueError("The batch size and the number of new tokens must be at least 1.")
    if kind == "structured" and structured_format not in metrics.STRUCTURED_FORMATS:
        raise ValueError(f"Unknown format {structured_format!r}; use one of: {', '.join(metrics.STRUCTURED_FORMATS)}.")
    started = time.monotonic()
    labels = list(labels) or list(dict.fromkeys(item.label for item in items if item.label))
    models = _load(Path(output_dir))
    total = len(items)
    samples: list[dict[str, Any]] = []
    stopped = False
    for start in range(0, total, decoding.batch_size):
        if should_stop is not None and should_stop():
            stopped = True
            break
        batch = items[start : start + decoding.batch_size]
        prompts = [item.prompt_messages for item in batch]
        prompted = [few_shot_prompt(item.prompt_messages, [s for s in shots if s.id != item.id]) for item in batch]
        seed = decoding.seed + start
        with models.base_context():
            base_model = models.base_model()
            base = generate(base_model, models.base_tokenizer, prompts, decoding, seed=seed)
            few_shot = generate(base_model, models.base_tokenizer, prompted, decoding, seed=seed)
        tuned = generate(models.tuned, models.tokenizer, prompts, decoding, seed=seed)
        for item, outputs in zip(batch, zip(base, few_shot, tuned, strict=True), strict=True):
            samples.append(
                _sample(item, dict(zip(SYSTEMS, outputs, strict=True)), kind, labels, structured_format, schema)
            )
        if progress is not None:
            progress(len(samples), total)

    report = EvalReport(samples=samples, stopped=stopped)
    report.overall = _overall(samples, kind, labels, structured_format, schema)
    if samples and not stopped:
        done = items[: len(samples)]
        conversations = [item.conversation() for item in done]
        with models.base_context():
            report.overall["base"]["perplexity"] = metrics.perplexity(
                models.base_model(), models.base_tokenizer, conversations, models.max_seq_length
            )
        report.overall["tuned"]["perplexity"] = metrics.perplexity(
            models.tuned, models.tokenizer, conversations, models.max_seq_length
        )
    report.by_label = _grouped(samples, "label", kind)
    report.by_source = _grouped(samples, "source", kind)
    report.device = str(_device(models.tuned))
    report.seconds = time.monotonic() - started
    return report


def _sample(
    item: EvalItem,
    outputs: dict[str, str],
    kind: str,
    labels: Sequence[str],
    structured_format: str = "json",
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One item's prompt, reference, outputs and per-sample metrics (with, for classification,
    each system's parsed label and whether it is right; for structured output, whether each
    answer parses and equals the reference)."""
    reference = item.reference
    sample: dict[str, Any] = {
        "id": item.id,
        "label": item.label,
        "source": item.source,
        "prompt": item.prompt_text,
        "context": item.prompt_messages[:-1] if len(item.prompt_messages) > 1 else [],
        "reference": reference,
        "outputs": outputs,
        "metrics": {system: _sample_metrics(text, reference) for system, text in outputs.items()},
    }
    if kind == "classification":
        sample["gold"] = item.gold_label
        sample["parsed"] = {system: metrics.parse_label(text, labels) for system, text in outputs.items()}
        for system, parsed in sample["parsed"].items():
            sample["metrics"][system]["label"] = parsed
            sample["metrics"][system]["correct"] = parsed is not None and parsed == sample["gold"]
    if kind == "structured":
        for system, text in outputs.items():
            scores = metrics.structured_metrics([text], [reference], format=structured_format, schema=schema)
            sample["metrics"][system]["valid"] = bool(scores["valid_rate"])
            sample["metrics"][system]["exact"] = bool(scores["exact_match"])
    return sample
