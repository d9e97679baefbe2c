"""Training examples as token ids and loss masks, resampling by label, and length-grouped batches.

Plain Python (no Django): the trainer calls these, and tests call them directly.

A conversation is rendered with the base model's chat template (exactly the text that
`curation/quality/lengths.py` counts), tokenised without special tokens (the template writes
them), and every token is masked out of the loss (-100) except the assistant turns: their
content, their tool calls and the end-of-turn marker that follows, so the model learns what to
answer, what to call and when to stop, never to imitate the user, the system prompt or a tool
result. A turn whose `weight` is 0 is context only; reasoning is trained, masked or dropped
from earlier turns as the run's `reasoning` setting says. How tools, calls, results and
reasoning reach the template (or its documented fallback) is training/engine/chat.py.
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

from training.engine.chat import THINK_CLOSE, THINK_OPEN, Conversation, prepare, render, rendering
from training.engine.interface import TrainExample

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

IGNORE = -100
# The end-of-turn pattern of each tokenizer, built once (a tokenizer may have hundreds of special tokens).
_END_MARKERS: weakref.WeakKeyDictionary[Any, _Ends | None] = weakref.WeakKeyDictionary()
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
    weights: torch.Tensor  # (batch,) float; packed: (1, tokens), each token its example's weight
    tokens: int  # real (non-padding) tokens
    trainable_tokens: int
    padding: int  # padding tokens added
    # Packed (one row, no padding): each token's position in its own example, restarting at 0 at
    # every example; flash_attention_2 reads the example boundaries from it. None when padded.
    position_ids: torch.Tensor | None = None


def _end_markers(tokenizer: PreTrainedTokenizerBase) -> _Ends | None:
    """Special tokens that may close an assistant turn (<|im_end|>, <|eot_id|>, </s>...), longest first."""
    try:
        return _END_MARKERS[tokenizer]
    except (KeyError, TypeError):
        pass
    ends = _end_pattern(tokenizer)
    with contextlib.suppress(TypeError):
        _END_MARKERS[tokenizer] = ends
    return ends


@dataclass(frozen=True)
class _Ends:
    follows: re.Pattern[str]  # whitespace, then a special token: what closes an answer after it
    closes: re.Pattern[str]  # a special token at the end of a text: the turn is closed already


def _end_pattern(tokenizer: PreTrainedTokenizerBase) -> _Ends | None:
    tokens = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for added in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(added, "special", False):
            tokens.add(str(added))
    if tokenizer.eos_token:
        tokens.add(tokenizer.eos_token)
    tokens = {token for token in tokens if token}
    if not tokens:
        return None
    alternatives = "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True))
    return _Ends(follows=re.compile(r"\s*(?:" + alternatives + ")"), closes=re.compile("(?:" + alternatives + r")\Z"))


def _try_render(
    tokenizer: PreTrainedTokenizerBase, conversation: Conversation, stop: int, *, prompt: bool
) -> str | None:
    """The conversation up to message `stop` (not included); None when the template refuses it
    (a template may refuse a conversation cut short, e.g. when roles must alternate)."""
    try:
        return render(tokenizer, conversation.messages[:stop], conversation.tools, generation_prompt=prompt)
    except Exception:  # noqa: BLE001
        return None


def _turn_end(
    tokenizer: PreTrainedTokenizerBase,
    conversation: Conversation,
    index: int,
    text: str,
    found: int,
    ends: _Ends | None,
) -> int:
    """Where the assistant turn `index` ends: after its content, or after the calls the template
    writes after it, and after the special token that closes the turn, if one follows."""
    message = conversation.messages[index]
    end = found + len((message.get("content") or "").strip())
    if message.get("tool_calls"):
        # The template writes the calls: the turn ends where the conversation cut after it does
        # (when that is a prefix of the whole text), else at the next special token.
        upto = _try_render(tokenizer, conversation, index + 1, prompt=False)
        if upto is not None and len(upto.rstrip()) > end and text.startswith(upto):
            end = len(upto.rstrip())
            if ends is not None and ends.closes.search(text, max(0, end - 200), end):
                return end
        elif ends is not None and (closing := ends.follows.search(text, end)) is not None:
            return closing.end()
        else:
            end = len(text.rstrip())
    match = ends.follows.match(text, end) if ends is not None else None
    return match.end() if match is not None else end


def _reasoning_hole(text: str, start: int, end: int, reasoning: str) -> tuple[int, int] | None:
    """The characters of a masked reasoning inside a turn, with the <think> tags and the
    whitespace around them; None when the turn does not show it."""
    if not reasoning:
        return None
    position = text.find(reasoning, start, end)
    if position < 0:
        return None
    low, high = position, position + len(reasoning)
    head = text[start:low].rstrip()
    if head.endswith(THINK_OPEN):
        low = start + len(head) - len(THINK_OPEN)
    tail = text[high:end]
    if tail.lstrip().startswith(THINK_CLOSE):
        high += len(tail) - len(tail.lstrip()) + len(THINK_CLOSE)
        high += len(text[high:end]) - len(text[high:end].lstrip())
    return low, high


def _without(span: tuple[int, int], hole: tuple[int, int] | None) -> list[tuple[int, int]]:
    if hole is None:
        return [span]
    return [piece for piece in ((span[0], hole[0]), (hole[1], span[1])) if piece[1] > piece[0]]


def _templated(tokenizer: PreTrainedTokenizerBase, conversation: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of what each trained assistant turn adds.

    A span starts where the template's generation prompt for that turn ends (the text of the
    conversation before it, rendered with `add_generation_prompt=True`, is a prefix of the whole
    text for well-behaved templates), or, when it is not a prefix, where the content is found;
    it ends after the content (and the calls the template writes) and the special token that
    closes the turn, if one follows it. Masked reasoning is cut out of its turn's span.
    """
    messages = conversation.messages
    text = render(tokenizer, messages, conversation.tools)
    ends = _end_markers(tokenizer)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        content = (message.get("content") or "").strip()
        start: int | None = None
        prefix = _try_render(tokenizer, conversation, index, prompt=True) if index else None
        if prefix and len(prefix) >= cursor and text.startswith(prefix):
            start = len(prefix)
        origin = start if start is not None else cursor
        # Reasoning the template writes comes first: the answer is looked for after it.
        thought = (message.get("reasoning_content") or "").strip()
        seen = text.find(thought, origin) if thought else -1
        after = seen + len(thought) if seen >= 0 else origin
        position = text.find(content, after) if content else (start or after)
        if position < 0:
            continue
        if start is None:
            start = seen if seen >= 0 else position
        end = _turn_end(tokenizer, conversation, index, text, position, ends)
        if end > start and conversation.trained[index]:
            spans.extend(_without((start, end), _reasoning_hole(text, start, end, conversation.masked[index])))
        cursor = end
    return text, spans


def _plain(tokenizer: PreTrainedTokenizerBase, conversation: Conversation) -> tuple[str, list[tuple[int, int]]]:
    """ "role: content" lines for a tokenizer without a chat template; the end-of-sequence token closes an answer."""
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    length = 0
    eos = tokenizer.eos_token or ""
    for index, message in enumerate(conversation.messages):
        head = f"{message.get('role', '')}: "
        content = message.get("content") or ""
        if message.get("role") == "assistant":
            content += eos
            if conversation.trained[index]:
                span = (length + len(head), length + len(head) + len(content))
                piece = head + content
                hole = _reasoning_hole(piece, len(head), len(piece), conversation.masked[index])
                spans.extend(_without(span, None if hole is None else (hole[0] + length, hole[1] + length)))
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


def encode(
    tokenizer: PreTrainedTokenizerBase, example: TrainExample, max_seq_length: int, *, reasoning: str = "train"
) -> EncodedExample | None:
    """Token ids and labels of one conversation, cut at `max_seq_length` tokens; None when no
    assistant token is left to train on (no answer, or the cut removed all of them). `reasoning`
    is the run's setting for the assistant turns' reasoning (training/engine/chat.py)."""
    templated = getattr(tokenizer, "chat_template", None) is not None
    conversation = prepare([dict(m) for m in example.messages], example.tools, rendering(tokenizer), reasoning)
    if templated:
        text, spans = _templated(tokenizer, conversation)
    else:
        text, spans = _plain(tokenizer, conversation)
    ids, trained = _tokenise(tokenizer, text, spans, add_special_tokens=not templated)
    ids = ids[:max_seq_length]
    labels = [token if keep else IGNORE for token, keep in zip(ids, trained[:max_seq_length], strict=True)]
    encoded = EncodedExample(input_ids=ids, labels=labels, weight=float(example.weight), length=len(ids))
    return encoded if encoded.trainable_tokens else None


def encode_all(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[TrainExample],
    max_seq_length: int,
    *,
    reasoning: str = "train",
) -> tuple[list[EncodedExample], int]:
    """The encoded examples that have something to train on, and how many were skipped."""
    encoded: list[EncodedExample] = []
    skipped = 0
    for example in examples:
        item = encode(tokenizer, example, max_seq_length, reasoning=reasoning)
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


def collate(items: Sequence[EncodedExample], *, pad_id: int = 0, packed: bool = False) -> Batch:
    """One batch, padded on the right to its own longest example (padding: mask 0, label IGNORE);
    `packed`: the examples one after another in a single row without padding (`_packed`)."""
    import torch

    if packed:
        return _packed(items)
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


def _packed(items: Sequence[EncodedExample]) -> Batch:
    """The examples one after another in one row, with position ids that restart at 0 at each
    example. The first label of every example is IGNORE: the token before it is the end of the
    previous example, which has nothing to say about it (an example's first label is never
    trained on anyway: `trainable_tokens`). Only an attention that reads the boundaries from the
    position ids (flash_attention_2) keeps the examples apart: `gpu.check_packing`."""
    import torch

    input_ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    weights: list[float] = []
    for item in items:
        input_ids.extend(item.input_ids)
        labels.append(IGNORE)
        labels.extend(item.labels[1:])
        positions.extend(range(item.length))
        weights.extend([item.weight] * item.length)
    tokens = len(input_ids)
    return Batch(
        input_ids=torch.tensor([input_ids], dtype=torch.long),
        attention_mask=torch.ones((1, tokens), dtype=torch.long),
        labels=torch.tensor([labels], dtype=torch.long),
        weights=torch.tensor([weights], dtype=torch.float32),
        tokens=tokens,
        trainable_tokens=sum(item.trainable_tokens for item in items),
        padding=0,
        position_ids=torch.tensor([positions], dtype=torch.long),
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
