"""Token counts as the trainer will see them, and a histogram to show them against the limits.

An example longer than the training sequence length is cut off, and the cut usually falls in
the assistant's answer, the part the model learns from; one longer than the model's context
cannot be trained at all. Characters or words say little about either, and tokenizers differ by
a factor of two or more on Japanese, so the counts come from the base model's own tokenizer
and chat template: the exact text the trainer tokenises, tools' schemas, calls and reasoning
included (rendered by llm/chat.py, which the trainer uses too).

Plain Python: conversations in, numbers out. A service reads the examples and stores or shows
what comes back.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext as _

from llm.chat import full_text
from llm.loading import TOKENIZE_LOCK, ModelLoadError, model_config, model_source, shared_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Conversation = list[dict[str, Any]]

# Configuration fields that hold the number of positions, by model family.
_POSITION_FIELDS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx")

# A tokenizer or model configuration that could not be loaded; the message says which and what to do.
LengthError = ModelLoadError


def load_tokenizer(base_model: str = "") -> PreTrainedTokenizerBase:
    """The tokenizer of `base_model` ("" for the embedded SmolLM2), loaded once per process."""
    return shared_tokenizer(base_model)


def context_length(base_model: str = "") -> int:
    """The most positions `base_model` ("" for the embedded SmolLM2) can attend to, from its configuration."""
    config = model_config(base_model)
    # Vision-language configurations keep the language model's fields in a sub-configuration.
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    values = (getattr(text_config, field, None) for field in _POSITION_FIELDS)
    positions = next((value for value in values if isinstance(value, int) and value > 0), None)
    if positions is None:
        raise LengthError(
            _(
                "The configuration of %(model)s does not say how many positions the model has "
                "(none of %(fields)s); set the training sequence length by hand."
            )
            % {"model": model_source(base_model)[2], "fields": ", ".join(_POSITION_FIELDS)}
        )
    return positions


def count_tokens(
    tokenizer: PreTrainedTokenizerBase,
    conversations: list[Conversation],
    *,
    tools: Sequence[list[dict[str, Any]] | None] | None = None,
    batch_size: int = 256,
) -> list[int]:
    """The number of tokens in each conversation, as the trainer will see it.

    The conversation is rendered as training renders it (llm/chat.py): with the tokenizer's chat
    template, given the example's `tools` (one list per conversation, or None) and the assistant
    turns' tool calls and reasoning, or written in the documented fallback where the template
    cannot render them (the tools listed in the system message, calls as `<tool_call>` JSON,
    reasoning as a `<think>` block), so tool schemas, call names and arguments and reasoning all
    count. No generation prompt (the answer is already there); tokenised without adding special
    tokens, since the template writes them. A tokenizer without a chat template gets "role:
    content" lines and its own special tokens. An empty conversation has 0 tokens.
    """
    if batch_size < 1:
        raise ValueError(_("batch_size is %(size)r; it must be at least 1.") % {"size": batch_size})
    if tools is not None and len(tools) != len(conversations):
        raise ValueError(_("Give one list of tools per conversation (or none at all)."))
    counts = [0] * len(conversations)
    templated = tokenizer.chat_template is not None
    filled = [index for index, conversation in enumerate(conversations) if conversation]
    for start in range(0, len(filled), batch_size):
        indices = filled[start : start + batch_size]
        texts = [full_text(tokenizer, conversations[index], tools[index] if tools else None) for index in indices]
        with TOKENIZE_LOCK:
            lengths = _encoded_lengths(tokenizer, texts, add_special_tokens=not templated)
        for index, length in zip(indices, lengths, strict=True):
            counts[index] = length
    return counts


def _encoded_lengths(tokenizer: PreTrainedTokenizerBase, texts: list[str], *, add_special_tokens: bool) -> list[int]:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    # Calling a fast tokenizer sets the Rust tokenizer's state and then runs its `encode_batch`;
    # while that state is what such a call sets, the Rust tokenizer gives the same tokens
    # directly, and its `encode_batch_fast` (no character offsets) is about a third faster.
    if (
        backend is not None
        and hasattr(backend, "encode_batch_fast")
        and backend.padding is None
        and backend.truncation is None
        and getattr(backend, "encode_special_tokens", False) == getattr(tokenizer, "split_special_tokens", False)
    ):
        encodings = backend.encode_batch_fast(texts, add_special_tokens=add_special_tokens)
        return [len(encoding.ids) for encoding in encodings]
    encoded = tokenizer(
        texts, add_special_tokens=add_special_tokens, return_attention_mask=False, return_token_type_ids=False
    )
    return [len(ids) for ids in encoded["input_ids"]]


@dataclass(frozen=True)
class Bin:
    """The counts above `low` up to and including `high` (the first bin includes `low` too).

    Closed on the right so that with a limit on an edge, every bin above it holds only examples
    that do not fit: an example of exactly `limit` tokens fits.
    """

    low: int
    high: int
    count: int


def _nice_widths(at_least: int) -> list[int]:
    """Round bin widths of at least `at_least`, smallest first: 1, 2 or 5 times a power of ten, or a power of two."""
    widths: set[int] = set()
    power = 1
    while power <= at_least * 64:
        widths.update((power, 2 * power, 5 * power))
        power *= 10
    power = 1
    while power <= at_least * 64:
        widths.add(power)
        power *= 2
    return sorted(width for width in widths if width >= at_least)


def histogram(counts: Sequence[int], *, bins: int = 20, limits: Sequence[int] = ()) -> list[Bin]:
    """About `bins` bins of a round width from 0 to past the largest count, empty bins included.

    Each limit (the training sequence length, the model's context) inside that range falls on
    a bin edge, so a chart can show exactly which bins are over it: the width is chosen to
    divide the limits when a round one near the ideal does (512 for 2048 and 8192), and
    otherwise the bin holding a limit is split in two there.
    """
    if not counts:
        return []
    if bins < 1:
        raise ValueError(_("bins is %(bins)r; it must be at least 1.") % {"bins": bins})
    top = max(counts)
    ideal = max(1, math.ceil(top / bins))
    inside = sorted({limit for limit in limits if 0 < limit <= top})
    width = next(
        (
            candidate
            for candidate in _nice_widths(ideal)
            if candidate <= 2 * ideal and all(limit % candidate == 0 for limit in inside)
        ),
        _nice_widths(ideal)[0],
    )
    end = max(1, math.ceil(top / width)) * width
    edges = sorted(set(range(0, end + 1, width)) | set(inside))
    tallies = [0] * (len(edges) - 1)
    for count in counts:
        # Closed on the right: a count equal to an edge belongs to the bin that ends there.
        position = max(0, bisect_left(edges, count) - 1)
        tallies[position] += 1
    return [Bin(low=low, high=high, count=tally) for low, high, tally in zip(edges, edges[1:], tallies, strict=False)]
