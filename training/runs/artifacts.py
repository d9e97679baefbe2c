"""A training run's artifacts, stored as curation/core/storage.py says: the run's folder on this
machine (`run_dir`) holds its frozen data (data.json), its trained model (output/), its checkpoints
(output/checkpoints/) and whatever logs the trainer writes there. With object storage that folder
is a working copy: it is published at every checkpoint and when the run ends, and a worker that
resumes, evaluates or generates with the run on another machine fetches what it needs back. With
the local storage the folder is the storage, and nothing here copies anything.

Rows keep references (curation/core/storage.py): `TrainingRun.checkpoint` and `output_dir` are
absolute paths with the local storage (as before) and storage names with object storage.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from curation.core.storage import (
    ArtifactMissing,
    Manifest,
    exists,
    fetch,
    is_remote,
    publish,
    reference,
    remove,
    subfolders,
)
from training.engine.checkpoints import COMPLETE_MARKERS, FOLDER, checkpoint_step
from training.models import TrainingRun

log = logging.getLogger(__name__)

OUTPUT = "output"
DATA = "data.json"


def run_dir(run: TrainingRun) -> Path:
    """The run's folder on this machine."""
    return Path(settings.ARTIFACT_DIR) / "runs" / str(run.pk)


def output_dir(run: TrainingRun) -> Path:
    """Where the trainer saves the run's model (and, in `checkpoints/`, its checkpoints)."""
    return run_dir(run) / OUTPUT


def run_file_write(run: TrainingRun, name: str, data: Any) -> None:
    """Write `data` as JSON to file `name` of the run's folder, and publish it."""
    path = run_dir(run) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    publish(path)


def run_file_read(run: TrainingRun, name: str, *, known: Manifest | None = None) -> Any | None:
    """The JSON of file `name` of the run's folder (fetched when this machine lacks it); None when
    it is nowhere."""
    try:
        path = fetch(reference(run_dir(run) / name), known=known)
    except ArtifactMissing:
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def run_files_clear(run: TrainingRun) -> None:
    """Delete whatever the run's folder holds, here and stored: what a launch rolled back left
    under a run id that is used again (SQLite reuses ids)."""
    remove(reference(run_dir(run)))


def output_available(run: TrainingRun) -> bool:
    """Whether the run finished with a trained model that is still there (here, or stored)."""
    return run.status == TrainingRun.Status.DONE and bool(run.output_dir) and exists(run.output_dir)


def output_folder(run: TrainingRun) -> Path:
    """The run's trained model on this machine (downloaded when it is missing): the output
    folder's own files (adapter or weights, tokenizer, shikomi_run.json), not its checkpoints
    or logs. ArtifactMissing when it is gone."""
    return fetch(run.output_dir, recursive=False)


def latest_checkpoint(run: TrainingRun) -> str | None:
    """The reference of the run's newest complete checkpoint, as listed in the storage; None
    when it has none."""
    root = reference(output_dir(run) / FOLDER)
    steps = sorted(
        ((step, name) for name in subfolders(root) if (step := checkpoint_step(name)) is not None), reverse=True
    )
    for _step, name in steps:
        folder = f"{root}/{name}"
        if any(exists(f"{folder}/{marker}") for marker in COMPLETE_MARKERS):
            return folder
    return None


def checkpoint_available(run: TrainingRun) -> bool:
    """Whether the run has a checkpoint to continue from: the one it recorded, or a newer one
    stored after it (a worker that died between storing a checkpoint and recording it)."""
    return bool(run.checkpoint and exists(run.checkpoint)) or latest_checkpoint(run) is not None


class RunArtifacts:
    """One attempt at training a run, keeping the run's folder and the storage in step; it
    remembers what it fetched and published, so that a file goes only once."""

    def __init__(self, run: TrainingRun) -> None:
        self.run = run
        self.folder = run_dir(run)
        self.known: Manifest = {}

    def frozen(self) -> dict[str, Any]:
        """What the run trains on (data.json, written at launch)."""
        data = run_file_read(self.run, DATA, known=self.known)
        if data is None:
            path = reference(self.folder / DATA)
            raise RuntimeError(_("The run's frozen data (%(path)s) is missing; launch a new run.") % {"path": path})
        return data

    def resume_point(self, recorded: str) -> Path | None:
        """The local checkpoint folder a resumed run continues from: its newest complete stored
        checkpoint, or the recorded one when that is newer; None when it has none (a fresh
        start). RuntimeError when the recorded checkpoint is gone: starting again from step 0
        would silently drop what was trained. The logs of earlier attempts come along (the
        trackers continue them: training/engine/tracking.py)."""
        self._fetch_logs()
        newest = latest_checkpoint(self.run)
        ref = recorded
        if newest and (not recorded or (checkpoint_step(newest) or 0) >= (checkpoint_step(recorded) or 0)):
            ref = newest
        if not ref:
            return None
        try:
            path = fetch(ref, known=self.known)
        except ArtifactMissing:
            raise RuntimeError(
                _(
                    "The run's checkpoint %(checkpoint)s is missing (not on this machine, nor in the artifacts "
                    "storage), so it cannot continue where it stopped; launch it again as a new run."
                )
                % {"checkpoint": ref}
            ) from None
        self._fetch_best(path)
        return path

    def _fetch_logs(self) -> None:
        """The stored folders of the run's folder but its output (TensorBoard's, with the MLflow
        run's id), when this machine lacks them."""
        if not is_remote():
            return
        root = reference(self.folder)
        for name in subfolders(root):
            if name != OUTPUT:
                fetch(f"{root}/{name}", known=self.known)

    def _fetch_best(self, checkpoint: Path) -> None:
        """A DPO checkpoint's best checkpoint too (transformers loads it back at the end when early
        stopping), when it is another folder that this machine lacks."""
        state = checkpoint / "trainer_state.json"
        if not is_remote() or not state.is_file():
            return
        best = json.loads(state.read_text(encoding="utf-8")).get("best_model_checkpoint")
        if best and Path(best).name != checkpoint.name:
            try:
                fetch(reference(checkpoint.parent / Path(best).name), known=self.known)
            except ArtifactMissing:
                log.warning("run %s: its best checkpoint %s is not stored", self.run.pk, best)

    def checkpoint_saved(self, path: Path) -> str:
        """After the trainer wrote checkpoint `path`: publish the run's folder (the checkpoint, and
        the logs so far), and return the checkpoint's reference. The storage then keeps the
        checkpoints this folder keeps: those the trainer deleted (it keeps the last few), or that
        an attempt elsewhere left and this one has gone past, are deleted there too."""
        path = Path(path)
        if not is_remote():
            return str(path)
        publish(self.folder, known=self.known, last=COMPLETE_MARKERS)
        here = set(subfolders(str(path.parent)))
        root = reference(path.parent)
        for name in subfolders(root):
            if name not in here and checkpoint_step(name) is not None:
                remove(f"{root}/{name}")
        return reference(path)

    def finished(self) -> None:
        """Publish the run's folder as the run ends: its trained model, the last logs."""
        if self.folder.is_dir():
            publish(self.folder, known=self.known, last=COMPLETE_MARKERS)
