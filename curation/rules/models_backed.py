"""The model-backed providers of the applier: similarity rules (sentence embeddings of the
examples people labeled) and LLM zero-shot rules (a generation backend asked which label fits).

An LLM rule names its backend as a generation job does (`params["backend"]`: one of the
project's connections, or a finished training run; none means the embedded model). Texts go
to the backend in batches of `BATCH`, so a run's progress moves while a chunk is classified
and the preview can say how long the model took per example.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from django.conf import settings

from curation.models import Example, Label, Project
from curation.rules.engine import Corpus
from curation.rules.spec import RuleSpec
from llm.interface import GenerationBackend

# Texts per generate call: small enough that progress moves every few seconds on a slow
# model, large enough for the local backend's batches and a server's concurrency.
BATCH = 16


def backend_key(spec: dict[str, Any] | None) -> str:
    """One key per distinct backend choice ("" for the embedded model)."""
    return json.dumps(spec, sort_keys=True) if spec else ""


class Models:
    """The model-backed providers for similarity and zero-shot rules, built on first use.

    `progress`, when given, is called after each batch a zero-shot rule classifies (and once
    for answers already known) with the number of texts answered so far, over all zero-shot
    rules and chunks. `asked` and `seconds` count the texts sent to a model and the time spent
    waiting for the answers."""

    def __init__(self, project: Project, labels: list[Label], *, progress: Callable[[int], None] | None = None) -> None:
        self.project = project
        self.labels = labels
        self.progress = progress
        self.answered = 0
        self.asked = 0
        self.seconds = 0.0
        self.backend_names: dict[str, str] = {}
        self._gold: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._answers: dict[tuple[str, str, str], str | None] = {}
        self._backends: dict[str, GenerationBackend] = {}

    def _store(self) -> Any:
        from curation.rules.embeddings import EmbeddingStore

        return EmbeddingStore(settings.DATA_DIR / "embeddings")

    def _gold_vectors(self, target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if target not in self._gold:
            from curation.rules.engine import target_text

            index = {label.pk: i for i, label in enumerate(self.labels)}
            rows = list(
                Example.objects.filter(project=self.project, label__isnull=False, weak_label__isnull=True)
                .order_by("id")
                .values_list("id", "messages", "label_id")
            )
            vectors = self._store().encode([target_text(r[1], target) for r in rows])
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            gold = np.array([index[r[2]] for r in rows], dtype=np.int64)
            self._gold[target] = (vectors, ids, gold)
        return self._gold[target]

    def similarity(self, rule: RuleSpec, corpus: Corpus) -> np.ndarray:
        vectors, ids, gold = self._gold_vectors(rule.target)
        mine = gold == rule.label
        if not mine.any():
            return np.zeros(len(corpus), dtype=bool)
        texts = self._store().encode(corpus.texts(rule.target))
        similarity = texts @ vectors[mine].T
        # An example is not evidence for itself.
        own = np.asarray(corpus.ids)[:, None] == ids[mine][None, :]
        similarity[own] = -1.0
        return similarity.max(axis=1) >= rule.params["threshold"]

    def backend(self, spec: dict[str, Any] | None) -> GenerationBackend:
        """The backend a rule's choice names, one per distinct choice. A deleted connection or
        an unset secret is a GenerationError saying so."""
        key = backend_key(spec)
        if key not in self._backends:
            if not spec:
                # Rules saved before they could choose: the embedded model, as they always had.
                from llm.local import default_backend

                self._backends[key] = default_backend()
            else:
                from curation.connections.backends import backend_from_spec

                self._backends[key] = backend_from_spec(spec, self.project)
            load = getattr(self._backends[key], "load", None)
            if callable(load):
                load()  # once per process: not part of the time per example
            self.backend_names[key] = self._backends[key].name
        return self._backends[key]

    def _count(self, answered: int) -> None:
        if answered:
            self.answered += answered
            if self.progress is not None:
                self.progress(self.answered)

    def zero_shot(self, rule: RuleSpec, corpus: Corpus) -> np.ndarray:
        from curation.rules.zero_shot import classify

        spec = rule.params.get("backend") or None
        instruction = rule.params.get("instruction", "")
        texts = corpus.texts(rule.target)
        where = backend_key(spec)
        keys = [(hashlib.sha256(t.encode()).hexdigest(), instruction, where) for t in texts]
        first: dict[tuple[str, str, str], int] = {}
        for i, key in enumerate(keys):
            if key not in self._answers:
                first.setdefault(key, i)
        missing = sorted(first.values())
        self._count(len(texts) - len(missing))  # known answers and repeated texts
        labels = [(label.name, label.description) for label in self.labels]
        for start in range(0, len(missing), BATCH):
            batch = missing[start : start + BATCH]
            backend = self.backend(spec)  # loaded before the clock starts
            began = time.monotonic()
            answers = classify([texts[i] for i in batch], labels, backend=backend, instruction=instruction)
            self.seconds += time.monotonic() - began
            self.asked += len(batch)
            for i, answer in zip(batch, answers, strict=True):
                self._answers[keys[i]] = answer
            self._count(len(batch))
        name = self.labels[rule.label].name
        return np.array([self._answers[key] == name for key in keys], dtype=bool)
