"""Training examples as token ids and loss masks, resampling by label, and length-grouped batches.

Plain Python (no Django): the trainer calls these, and tests call them directly.

A conversation is rendered with the base model's chat template (exactly the text that
`curation/quality/lengths.py` counts), tokenised without special tokens (the template writes
them), and every token is masked out of the loss (-100) except the assistant turns: their
content and the end-of-turn marker that follows it, so the model learns what to answer and
when to stop, never to imitate the user or the system prompt.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from training.engine.interface import TrainExample

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

IGNORE = -100
# The end-of-turn pattern of each tokenizer, built once (a tokenizer may have hundreds of special tokens).
_END_MARKERS: weakref.WeakKeyDictionary[Any, re.Pattern[str] | None] = weakref.WeakKeyDictionary()
# Length grouping sorts by length within shuffled chunks of this many batches: padding stays
# small, yet the batches of one chunk are not all long or all short across the whole epoch.
MEGA_CHUNK_BATCHES = 50


@dataclass
class EncodedExample:
    input_ids: list[int]
    labels: list[int]  # IGNORE where the token is not trained on; not shifted (the loss shifts)
    weight: float
    length: int

    @property
    def trainable_tokens(self) -> int:
        """Positions the loss sees: a label at position 0 has no previous token to predict it from."""
        return sum(1 for label in self.labels[1:] if label != IGNORE)


@dataclass
class Batch:
    input_ids: torch.Tensor  # (batch, longest) long, padded on the right
    attention_mask: torch.Tensor  # (batch, longest) long
    labels: torch.Tensor  # (batch, longest) long, IGNORE on padding
    weights: torch.Tensor  # (batch,) float
    tokens: int  # real (non-padding) tokens
    trainable_tokens: int
    padding: int  # padding tokens added


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]], *, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _end_markers(tokenizer: PreTrainedTokenizerBase) -> re.Pattern[str] | None:
    """Special tokens that may close an assistant turn (<|im_end|>, <|eot_id|>, </s>...), longest first."""
    try:
        return _END_MARKERS[tokenizer]
    except (KeyError, TypeError):
        pass
    pattern = _end_pattern(tokenizer)
    with contextlib.suppress(TypeError):
        _END_MARKERS[tokenizer] = pattern
    return pattern


def _end_pattern(tokenizer: PreTrainedTokenizerBase) -> re.Pattern[str] | None:
    tokens = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for added in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(added, "special", False):
            tokens.add(str(added))
    if tokenizer.eos_token:
        tokens.add(tokenizer.eos_token)
    tokens = {token for token in tokens if token}
    if not tokens:
        return None
    return re.compile(r"\s*(?:" + "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)) + ")")


def _templated(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of what each assistant turn adds.

    A span starts where the template's generation prompt for that turn ends (the text of the
    conversation before it, rendered with `add_generation_prompt=True`, is a prefix of the whole
    text for well-behaved templates), or, when it is not a prefix, where the content is found;
    it ends after the content and the special token that closes the turn, if one follows it.
    """
    text = _render(tokenizer, messages, generation_prompt=False)
    ends = _end_markers(tokenizer)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        content = (message.get("content") or "").strip()
        start: int | None = None
        try:
            prefix = _render(tokenizer, messages[:index], generation_prompt=True) if index else None
        except Exception:  # a template may refuse a conversation cut short (e.g. roles must alternate)
            prefix = None
        if prefix and len(prefix) >= cursor and text.startswith(prefix):
            start = len(prefix)
        position = text.find(content, start if start is not None else cursor) if content else (start or cursor)
        if position < 0:
            continue
        if start is None:
            start = position
        end = position + len(content)
        match = ends.match(text, end) if ends is not None else None
        if match is not None:
            end = match.end()
        if end > start:
            spans.append((start, end))
        cursor = end
    return text, spans


def _plain(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """ "role: content" lines for a tokenizer without a chat template; the end-of-sequence token closes an answer."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    length = 0
    eos = tokenizer.eos_token or ""
    for message in messages:
        head = f"{message.get('role', '')}: "
        content = message.get("content") or ""
        if message.get("role") == "assistant":
            content += eos
            spans.append((length + len(head), length + len(head) + len(content)))
        piece = head + content + "\n"
        parts.append(piece)
        length += len(piece)
    return "".join(parts), spans


def _tokenise(
    tokenizer: PreTrainedTokenizerBase, text: str, spans: list[tuple[int, int]], *, add_special_tokens: bool
) -> tuple[list[int], list[bool]]:
    """Token ids of `text` and, for each, whether it overlaps an assistant span."""
    if getattr(tokenizer, "is_fast", False):
        encoded = tokenizer(
            text, add_special_tokens=add_special_tokens, return_offsets_mapping=True, return_attention_mask=False
        )
        ids = list(encoded["input_ids"])
        trained = [
            end > start and any(end > s and start < e for s, e in spans) for start, end in encoded["offset_mapping"]
        ]
        return ids, trained
    # A slow tokenizer gives no character offsets: tokenise the pieces between span edges apart.
    edges = sorted({0, len(text), *(edge for span in spans for edge in span)})
    ids = []
    trained = []
    if add_special_tokens and tokenizer.bos_token_id is not None:
        ids.append(tokenizer.bos_token_id)
        trained.append(False)
    for start, end in zip(edges, edges[1:], strict=False):
        piece = tokenizer(text[start:end], add_special_tokens=False)["input_ids"]
        inside = any(s <= start and end <= e for s, e in spans)
        ids.extend(piece)
        trained.extend([inside] * len(piece))
    return ids, trained


def encode(tokenizer: PreTrainedTokenizerBase, example: TrainExample, max_seq_length: int) -> EncodedExample | None:
    """Token ids and labels of one conversation, cut at `max_seq_length` tokens; None when no
    assistant token is left to train on (no answer, or the cut removed all of them)."""
    messages = [dict(message) for message in example.messages]
    templated = getattr(tokenizer, "chat_template", None) is not None
    if templated:
        text, spans = _templated(tokenizer, messages)
    else:
        text, spans = _plain(tokenizer, messages)
    ids, trained = _tokenise(tokenizer, text, spans, add_special_tokens=not templated)
    ids = ids[:max_seq_length]
    labels = [token if keep else IGNORE for token, keep in zip(ids, trained[:max_seq_length], strict=True)]
    encoded = EncodedExample(input_ids=ids, labels=labels, weight=float(example.weight), length=len(ids))
    return encoded if encoded.trainable_tokens else None


def encode_all(
    tokenizer: PreTrainedTokenizerBase, examples: Sequence[TrainExample], max_seq_length: int
) -> tuple[list[EncodedExample], int]:
    """The encoded examples that have something to train on, and how many were skipped."""
    encoded: list[EncodedExample] = []
    skipped = 0
    for example in examples:
        item = encode(tokenizer, example, max_seq_length)
        if item is None:
            skipped += 1
        else:
            encoded.append(item)
    return encoded, skipped


def resample(examples: Sequence[TrainExample], balance: str, seed: int) -> list[TrainExample]:
    """Examples balanced by `TrainExample.label`.

    "oversample": every label's examples are repeated (whole copies, then a random draw for the
    rest) up to the count of the most frequent label; "undersample": every label keeps a random
    draw of the count of the rarest label. Examples without a label are kept as they are. Any
    other balance ("none", "class_weights": the weights are on the examples) changes nothing.
    Deterministic for a seed; the original order is kept, with added copies after it.
    """
    examples = list(examples)
    if balance not in ("oversample", "undersample"):
        return examples
    groups: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        if example.label is not None:
            groups[example.label].append(index)
    if len(groups) < 2:
        return examples
    rng = random.Random(seed)
    if balance == "undersample":
        smallest = min(len(indices) for indices in groups.values())
        kept = {index for label in sorted(groups) for index in rng.sample(groups[label], smallest)}
        return [example for index, example in enumerate(examples) if example.label is None or index in kept]
    largest = max(len(indices) for indices in groups.values())
    extra: list[TrainExample] = []
    for label in sorted(groups):
        indices = groups[label]
        missing = largest - len(indices)
        copies, rest = divmod(missing, len(indices))
        extra.extend(examples[index] for _ in range(copies) for index in indices)
        extra.extend(examples[index] for index in sorted(rng.sample(indices, rest)))
    return examples + extra


def batch_order(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, shuffle: bool = True
) -> list[list[int]]:
    """Indices of the examples in each batch, grouped by length.

    With `shuffle`, the examples are shuffled, cut into mega-chunks of `MEGA_CHUNK_BATCHES`
    batches, sorted by length inside each chunk and cut into batches, and the batches are
    shuffled: each batch holds examples of similar length (little padding) while the order is
    random. Deterministic for (seed, epoch), so a resumed run sees the batches it would have.
    Without `shuffle` (evaluation) the examples are simply sorted by length, longest first.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size is {batch_size!r}; it must be at least 1.")
    indices = list(range(len(lengths)))
    if not shuffle:
        indices.sort(key=lambda index: -lengths[index])
        return [indices[start : start + batch_size] for start in range(0, len(indices), batch_size)]
    rng = random.Random(f"shikomi-batches:{seed}:{epoch}")
    rng.shuffle(indices)
    chunk = MEGA_CHUNK_BATCHES * batch_size
    order: list[list[int]] = []
    for start in range(0, len(indices), chunk):
        block = sorted(indices[start : start + chunk], key=lambda index: -lengths[index])
        order.extend(block[offset : offset + batch_size] for offset in range(0, len(block), batch_size))
    rng.shuffle(order)
    return order


def collate(items: Sequence[EncodedExample], *, pad_id: int = 0) -> Batch:
    """One batch, padded on the right to its own longest example (padding: mask 0, label IGNORE)."""
    import torch

    longest = max(item.length for item in items)
    input_ids = torch.full((len(items), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(items), longest), dtype=torch.long)
    labels = torch.full((len(items), longest), IGNORE, dtype=torch.long)
    for row, item in enumerate(items):
        input_ids[row, : item.length] = torch.tensor(item.input_ids, dtype=torch.long)
        attention_mask[row, : item.length] = 1
        labels[row, : item.length] = torch.tensor(item.labels, dtype=torch.long)
    tokens = sum(item.length for item in items)
    return Batch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        labels=labels,
        weights=torch.tensor([item.weight for item in items], dtype=torch.float32),
        tokens=tokens,
        trainable_tokens=sum(item.trainable_tokens for item in items),
        padding=len(items) * longest - tokens,
    )


def batches(
    encoded: Sequence[EncodedExample],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool = True,
    pad_id: int = 0,
) -> list[Batch]:
    """The padded batches of one epoch, in the order of `batch_order`."""
    order = batch_order([item.length for item in encoded], batch_size, seed=seed, epoch=epoch, shuffle=shuffle)
    return [collate([encoded[index] for index in indices], pad_id=pad_id) for indices in order]


def steps_per_epoch(examples: int, batch_size: int, accumulation: int) -> int:
    """Optimiser steps in one epoch: the last step of an epoch may gather fewer micro-batches."""
    return math.ceil(math.ceil(examples / batch_size) / accumulation) if examples else 0
