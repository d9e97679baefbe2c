"""The evaluation of a trained run on held-out examples: what the base model, the base model
prompted with a few training examples ("prompt it first"), and the tuned model answer, with the
same decoding settings, and the metrics of `training.evaluation.metrics` over those answers.

Plain Python (no Django): the Huey task turns the frozen test split into `EvalItem`s, calls
`evaluate_run()` and stores the `EvalReport`.

The prompt of an item is every message before its last assistant message; the reference is
that message's content, then its tool calls written as `<tool_call>{…}</tool_call>` lines (a
classification item without an answer has its label as reference). BLEU's tokenisation is chosen
once per evaluation from all the references (`metrics.choose_tokenize`) and used for every
system, group and sample; `EvalReport.scoring` records it. When a reference turn has tool calls,
every sample also gets the tool-call metrics of `training.evaluation.toolcalls`.
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

from training.evaluation import metrics, toolcalls

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
    tools: list[dict[str, Any]] | None = None  # the example's function schemas (OpenAI's tools shape)

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

    def answer_message(self) -> dict[str, Any]:
        """The evaluated assistant turn (its label as the content when there is none), without a weight."""
        index = self._last_answer()
        if index is None:
            return {"role": "assistant", "content": self.label or ""}
        return {key: value for key, value in self.messages[index].items() if key != "weight"}

    @property
    def reference_calls(self) -> list[toolcalls.Call]:
        return toolcalls.reference_calls(self.answer_message())

    @property
    def reference(self) -> str:
        message = self.answer_message()
        parts = [str(message.get("content") or ""), toolcalls.render_calls(message)]
        return "\n".join(part for part in parts if part)

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
        """The prompt and the evaluated turn (for the perplexity of the reference): earlier
        assistant turns weigh 0, the evaluated one 1, so that only it is scored."""
        earlier = [{**m, "weight": 0} if m.get("role") == "assistant" else m for m in self.prompt_messages]
        return [*earlier, self.answer_message()]


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
    scoring: dict[str, Any] = field(default_factory=dict)  # how the texts were scored (metrics.scale)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scoring": self.scoring,
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
        turns.append(shot.answer_message())
    return [*prompt[:head], *turns, *prompt[head:]]


def few_shot_tools(tools: Sequence[dict[str, Any]] | None, shots: Sequence[EvalItem]) -> list[dict[str, Any]] | None:
    """The tools of a few-shot prompt: the item's own, then those of its shots that it lacks
    (by function name), so each shot's calls name a function the prompt offers. None when
    neither has any."""
    merged: dict[str, dict[str, Any]] = {}
    for tool in [*(tools or []), *(t for shot in shots for t in shot.tools or [])]:
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str):
            merged.setdefault(name, tool)
    return list(merged.values()) or (list(tools) if tools else None)


def check_no_leak(test_ids: Sequence[int], training_ids: Sequence[int]) -> None:
    """EvaluationLeak naming the test items that are also training items."""
    training = set(training_ids)
    leaked = [item for item in dict.fromkeys(test_ids) if item in training]
    if leaked:
        raise EvaluationLeak(leaked)


# --- Generation ---------------------------------------------------------------------------------


def _render(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> str:
    """The prompt as training rendered its conversations (training/engine/chat.py: the tools and
    calls given to the template, or its documented fallback), with the generation prompt."""
    from training.engine.chat import prepare, render, rendering

    conversation = prepare([dict(message) for message in messages], tools, rendering(tokenizer))
    if getattr(tokenizer, "chat_template", None):
        return render(tokenizer, conversation.messages, conversation.tools, generation_prompt=True)
    lines = [f"{message.get('role', '')}: {message.get('content') or ''}\n" for message in conversation.messages]
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
    tools: Sequence[list[dict[str, Any]] | None] | None = None,
) -> list[str]:
    """One answer per conversation, generated in one left-padded batch, special tokens stripped;
    `tools`, one list per conversation, go to the chat template."""
    import torch

    if not conversations:
        return []
    templated = bool(getattr(tokenizer, "chat_template", None))
    tools = list(tools) if tools is not None else [None] * len(conversations)
    texts = [_render(tokenizer, list(c), t) for c, t in zip(conversations, tools, strict=True)]
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
    base_tokenizer, base, _ = load_base(
        run.get("base_model", ""), method="lora", device=str(_device(tuned)), for_inference=True
    )
    base_tokenizer.padding_side = "left"
    base.eval()
    return _Models(tokenizer, tuned, base, base_tokenizer, False, max_seq_length)


# --- Metrics ------------------------------------------------------------------------------------


@dataclass
class _Scoring:
    """What an evaluation scores by, chosen once: the kind, the labels, the structured format and
    schema, BLEU's tokenizer for every system and sample, and whether tool calls are scored."""

    kind: str
    labels: Sequence[str] = ()
    structured_format: str = "json"
    schema: dict[str, Any] | None = None
    tokenize: str | None = None
    tool_calls: bool = False


def _sample_metrics(output: str, reference: str, tokenize: str | None = None) -> dict[str, Any]:
    scores: dict[str, Any] = dict(metrics.sample_text_metrics(output, reference, tokenize=tokenize))
    scores["repetition"] = metrics.repetition(output)
    scores["length_chars"] = len(output)
    scores["length_tokens"] = len(metrics.tokens(output))
    return scores


def _text_scores(outputs: list[str], references: list[str], tokenize: str | None) -> dict[str, Any]:
    result = metrics.text_metrics(outputs, references, tokenize=tokenize)
    result["repetition"] = statistics.fmean(metrics.repetition(text) for text in outputs) if outputs else None
    return result


def _tool_scores(samples: list[dict[str, Any]], system: str) -> dict[str, Any] | None:
    scores = [
        sample["metrics"][system]["tool_calls"] for sample in samples if "tool_calls" in sample["metrics"][system]
    ]
    return toolcalls.aggregate(scores) if scores else None


def _group_scores(samples: list[dict[str, Any]], scoring: _Scoring) -> dict[str, dict[str, Any]]:
    references = [sample["reference"] for sample in samples]
    scores: dict[str, dict[str, Any]] = {}
    for system in SYSTEMS:
        outputs = [sample["outputs"][system] for sample in samples]
        result = _text_scores(outputs, references, scoring.tokenize)
        if scoring.kind == "classification":
            hits = [sample["parsed"][system] == sample["gold"] for sample in samples]
            result["accuracy"] = sum(hits) / len(hits) if hits else None
        if scoring.tool_calls:
            result["tool_calls"] = _tool_scores(samples, system)
        scores[system] = result
    return scores


def _overall(samples: list[dict[str, Any]], scoring: _Scoring) -> dict[str, dict[str, Any]]:
    references = [sample["reference"] for sample in samples]
    overall: dict[str, dict[str, Any]] = {}
    for system in SYSTEMS:
        outputs = [sample["outputs"][system] for sample in samples]
        result = _text_scores(outputs, references, scoring.tokenize)
        result["distinct_1"] = metrics.distinct_n(outputs, 1)
        result["distinct_2"] = metrics.distinct_n(outputs, 2)
        result["length"] = metrics.length_stats(outputs)
        result["perplexity"] = None
        if scoring.kind == "classification":
            result["classification"] = metrics.classification_metrics(
                [sample["parsed"][system] for sample in samples], [sample["gold"] for sample in samples], scoring.labels
            )
        if scoring.kind == "structured":
            result["structured"] = metrics.structured_metrics(
                outputs, references, format=scoring.structured_format, schema=scoring.schema
            )
        if scoring.tool_calls:
            result["tool_calls"] = _tool_scores(samples, system)
        overall[system] = result
    return overall


def _grouped(samples: list[dict[str, Any]], key: str, scoring: _Scoring) -> dict[str, dict[str, dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        value = sample.get(key)
        if value is None or value == "":
            continue
        groups.setdefault(str(value), []).append(sample)
    return {value: _group_scores(members, scoring) for value, members in sorted(groups.items())}


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
    BLEU's tokenizer is chosen once from all the items' references.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown evaluation kind {kind!r}; the kinds are {', '.join(KINDS)}.")
    if decoding.batch_size < 1 or decoding.max_new_tokens < 1:
        raise ValueError("The batch size and the number of new tokens must be at least 1.")
    if kind == "structured" and structured_format not in metrics.STRUCTURED_FORMATS:
        raise ValueError(f"Unknown format {structured_format!r}; use one of: {', '.join(metrics.STRUCTURED_FORMATS)}.")
    started = time.monotonic()
    scoring = _scoring_for(items, kind, labels, structured_format, schema)
    models = _load(Path(output_dir))
    samples, stopped = _answer_all(models, items, shots, decoding, scoring, progress, should_stop)
    report = _report(samples, scoring, stopped)
    if samples and not stopped:
        conversations = [item.conversation() for item in items[: len(samples)]]
        tools = [item.tools for item in items[: len(samples)]]
        with models.base_context():
            report.overall["base"]["perplexity"] = metrics.perplexity(
                models.base_model(), models.base_tokenizer, conversations, models.max_seq_length, tools=tools
            )
        report.overall["tuned"]["perplexity"] = metrics.perplexity(
            models.tuned, models.tokenizer, conversations, models.max_seq_length, tools=tools
        )
    report.device = str(_device(models.tuned))
    report.seconds = time.monotonic() - started
    return report


def _scoring_for(
    items: Sequence[EvalItem],
    kind: str,
    labels: Sequence[str] = (),
    structured_format: str = "json",
    schema: dict[str, Any] | None = None,
) -> _Scoring:
    """The evaluation's scoring, chosen once from all its items (BLEU's tokenizer from their
    references; tool calls scored when a reference turn has some)."""
    return _Scoring(
        kind=kind,
        labels=list(labels) or list(dict.fromkeys(item.label for item in items if item.label)),
        structured_format=structured_format,
        schema=schema,
        tokenize=metrics.choose_tokenize([item.reference for item in items]),
        tool_calls=any(item.reference_calls for item in items),
    )


def _report(samples: list[dict[str, Any]], scoring: _Scoring, stopped: bool = False) -> EvalReport:
    """The report of scored samples: how they were scored, overall, by label and by source."""
    report = EvalReport(samples=samples, stopped=stopped)
    report.scoring = {**metrics.scale(scoring.tokenize or "13a"), "perplexity": "evaluated_turn"}
    report.scoring["tool_calls"] = scoring.tool_calls
    report.overall = _overall(samples, scoring)
    report.by_label = _grouped(samples, "label", scoring)
    report.by_source = _grouped(samples, "source", scoring)
    return report


def score_answers(
    items: Sequence[EvalItem],
    answers: Sequence[dict[str, str]],
    *,
    kind: str = "chat",
    labels: Sequence[str] = (),
    structured_format: str = "json",
    schema: dict[str, Any] | None = None,
) -> EvalReport:
    """Answers generated elsewhere (one {"base", "few_shot", "tuned": text} per item, e.g. by a
    served model) scored as `evaluate_run` scores its own: one scale for every system, the
    tool-call metrics when a reference has calls; no perplexity."""
    if len(items) != len(answers):
        raise ValueError(f"Each item needs its answers: got {len(items)} items and {len(answers)} answers.")
    scoring = _scoring_for(items, kind, labels, structured_format, schema)
    samples = [_scored(item, dict(outputs), scoring) for item, outputs in zip(items, answers, strict=True)]
    return _report(samples, scoring)


def _answer_all(
    models: _Models,
    items: list[EvalItem],
    shots: list[EvalItem],
    decoding: Decoding,
    scoring: _Scoring,
    progress: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[list[dict[str, Any]], bool]:
    """Every item answered by the three systems, batch by batch, and its samples scored; and
    whether `should_stop` stopped it early."""
    total = len(items)
    samples: list[dict[str, Any]] = []
    for start in range(0, total, decoding.batch_size):
        if should_stop is not None and should_stop():
            return samples, True
        batch = items[start : start + decoding.batch_size]
        prompts = [item.prompt_messages for item in batch]
        item_shots = [[s for s in shots if s.id != item.id] for item in batch]
        prompted = [few_shot_prompt(item.prompt_messages, its) for item, its in zip(batch, item_shots, strict=True)]
        tools = [item.tools for item in batch]
        shot_tools = [few_shot_tools(item.tools, its) for item, its in zip(batch, item_shots, strict=True)]
        seed = decoding.seed + start
        with models.base_context():
            base_model = models.base_model()
            base = generate(base_model, models.base_tokenizer, prompts, decoding, seed=seed, tools=tools)
            few_shot = generate(base_model, models.base_tokenizer, prompted, decoding, seed=seed, tools=shot_tools)
        tuned = generate(models.tuned, models.tokenizer, prompts, decoding, seed=seed, tools=tools)
        for item, outputs in zip(batch, zip(base, few_shot, tuned, strict=True), strict=True):
            samples.append(_scored(item, dict(zip(SYSTEMS, outputs, strict=True)), scoring))
        if progress is not None:
            progress(len(samples), total)
    return samples, False


def _sample(
    item: EvalItem,
    outputs: dict[str, str],
    kind: str,
    labels: Sequence[str],
    structured_format: str = "json",
    schema: dict[str, Any] | None = None,
    *,
    tokenize: str | None = None,
) -> dict[str, Any]:
    """One item's prompt, reference, outputs and per-sample metrics (see `_scored`); BLEU's
    tokenizer is `tokenize`, or chosen from this reference alone; tool calls are scored when the
    reference has some."""
    scoring = _Scoring(kind, labels, structured_format, schema, tokenize, bool(item.reference_calls))
    return _scored(item, outputs, scoring)


def _scored(item: EvalItem, outputs: dict[str, str], scoring: _Scoring) -> dict[str, Any]:
    """One item's prompt, reference, outputs and per-sample metrics (with, for classification,
    each system's parsed label and whether it is right; for structured output, whether each
    answer parses and equals the reference; with tool calls, `toolcalls.score_sample`)."""
    reference = item.reference
    sample: dict[str, Any] = {
        "id": item.id,
        "label": item.label,
        "source": item.source,
        "prompt": item.prompt_text,
        "context": item.prompt_messages[:-1] if len(item.prompt_messages) > 1 else [],
        "reference": reference,
        "outputs": outputs,
        "metrics": {system: _sample_metrics(text, reference, scoring.tokenize) for system, text in outputs.items()},
    }
    if scoring.kind == "classification":
        sample["gold"] = item.gold_label
        sample["parsed"] = {system: metrics.parse_label(text, scoring.labels) for system, text in outputs.items()}
        for system, parsed in sample["parsed"].items():
            sample["metrics"][system]["label"] = parsed
            sample["metrics"][system]["correct"] = parsed is not None and parsed == sample["gold"]
    if scoring.kind == "structured":
        for system, text in outputs.items():
            scores = metrics.structured_metrics(
                [text], [reference], format=scoring.structured_format, schema=scoring.schema
            )
            sample["metrics"][system]["valid"] = bool(scores["valid_rate"])
            sample["metrics"][system]["exact"] = bool(scores["exact_match"])
    if scoring.tool_calls:
        expected = item.reference_calls
        for system, text in outputs.items():
            called = toolcalls.parse_calls(text)
            sample["metrics"][system]["tool_calls"] = toolcalls.score_sample(called, expected, item.tools)
    return sample
