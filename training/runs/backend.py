"""The model a finished training run made, as a generation backend for the next round of drafts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from curation.core.storage import fetch
from llm.interface import GenerationError
from llm.local import LocalBackend

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class TunedBackend(LocalBackend):
    """A model fine-tuned by a finished training run of this app: its base model with the
    run's adapter (or its full weights), so the next round of drafts can come from it.
    `output_dir` is the run's reference to its model (curation/core/storage.py), fetched to
    this machine when the model is loaded."""

    def __init__(self, output_dir: str, name: str, *, batch_size: int = 16) -> None:
        super().__init__(output_dir, batch_size=batch_size)
        self.name = name

    def _load(self) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
        from training.engine.modeling import load_trained

        try:
            tokenizer, model = load_trained(fetch(self.model or "", recursive=False))
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
