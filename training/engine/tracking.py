"""Run tracking where teams already look: TensorBoard event files in the run's folder, and MLflow
when the environment variable MLFLOW_TRACKING_URI is set.

The trainers (trainer.py, dpo.py) hand their callbacks to a `Tracker` and train with
`tracker.callbacks`: every progress report then also logs the step's losses, learning rate and
throughput. The configuration is logged when the run starts, the result when it ends.

TensorBoard: `<run folder>/tensorboard`, beside the output folder the trainer is given. A resumed
run appends to it, and its first event hides the points of the steps that are trained again
after an interruption (`purge_step`), as the run's own loss points are replaced.

MLflow: one MLflow run per training run, named by the caller, its id kept in
`tensorboard/mlflow_run_id` so that a resumed run continues it. mlflow is imported only when the
variable is set, and one background thread makes every call to the server: a step only queues
its metrics, and the thread sends whatever queued up meanwhile in one `log_batch`, so a slow or
unreachable server never holds up a step. The end of the run waits up to FLUSH_SECONDS for it.

Tracking never fails a training run: an error becomes one warning line in the run's log and
leaves that destination off for the rest of the run. Under several processes only the first
(RANK 0) tracks.
"""

from __future__ import annotations

import collections
import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any

from llm.loading import EMBEDDED_NAME
from text.i18n import gettext as _
from training.engine.config import TrainConfig
from training.engine.interface import Callbacks, NoCallbacks, Progress, TrainResult

TENSORBOARD_DIR = "tensorboard"
RUN_ID_FILE = "mlflow_run_id"
FLUSH_SECONDS = 30.0  # how long the end of a run waits for MLflow to take what is still queued
STOPPED_WAIT_SECONDS = 2.0  # the same for a run stopped from outside (a signal)
TENSORBOARD_FLUSH_SECONDS = 30  # how often the event file is written out while the run goes on
MAX_BATCH = 1000  # MLflow takes at most 1,000 metrics in one log_batch request
# The metrics of the loss chart and the result, and the names they have in TensorBoard and MLflow.
STEP_METRICS = {
    "train_loss": "train/loss",
    "learning_rate": "train/learning_rate",
    "tokens_per_second": "train/tokens_per_second",
    "epoch": "train/epoch",
    "tokens_seen": "train/tokens_seen",
}
RESULT_METRICS = {
    "final_train_loss": "final/train_loss",
    "final_val_loss": "final/val_loss",
    "best_val_loss": "final/best_val_loss",
    "tokens": "final/tokens",
    "seconds": "final/seconds",
    "steps": "final/steps",
}
VAL_LOSS = "val/loss"
_STOP = "stop"  # put on the MLflow queue after the last item


def tracking_dir(output_dir: Path) -> Path:
    """The run's TensorBoard folder: `tensorboard` beside the output folder."""
    return Path(output_dir).absolute().parent / TENSORBOARD_DIR


def hyperparameters(config: TrainConfig) -> dict[str, Any]:
    """The configuration as TensorBoard hyperparameters and MLflow params (lists joined by commas,
    the embedded base model by its name)."""
    values = {key: ",".join(map(str, v)) if isinstance(v, list) else v for key, v in config.as_dict().items()}
    values["base_model"] = config.base_model or EMBEDDED_NAME
    return values


def _describe(exc: BaseException) -> str:
    """The error's first line, without a password written into an address, and not too long."""
    text = (str(exc).strip().splitlines() or [""])[0]
    text = re.sub(r"//[^/@\s]+@", "//***@", text)
    return f"{type(exc).__name__}: {text}"[:300]


def _table(rows: list[tuple[str, str]]) -> str:
    """Rows as a Markdown table, as TensorBoard's text view shows it."""
    return "\n".join(["| | |", "|---|---|", *(f"| {key} | {value} |" for key, value in rows)])


class _TrackedCallbacks:
    """The trainer's callbacks, with every progress report also logged by the tracker."""

    def __init__(self, inner: Callbacks, tracker: Tracker) -> None:
        self.inner = inner
        self.tracker = tracker

    def on_log(self, progress: Progress) -> None:
        self.inner.on_log(progress)
        self.tracker.log(progress)

    def on_checkpoint(self, path: Path, step: int) -> None:
        # The events so far go to disk first: the caller may publish the run's folder now.
        self.tracker.flush()
        self.inner.on_checkpoint(path, step)

    def on_message(self, line: str) -> None:
        self.inner.on_message(line)

    def should_stop(self) -> bool:
        return self.inner.should_stop()


class _MLflow:
    """One MLflow run, fed through a queue by a background thread that makes every call to MLflow.

    The queue holds lists of metrics, dicts of tags, an end status ("FINISHED", "KILLED",
    "FAILED") and the stop mark, in the order the run produced them. The thread's first error
    ends it; `error` then says what it was, and what is still queued is never sent.
    """

    def __init__(self, uri: str, *, folder: Path, run_name: str, tags: dict[str, str], params: dict[str, Any]) -> None:
        # Imported here, in the training thread, so that a run without MLflow never imports it
        # and the background thread imports nothing while the trainer imports its libraries.
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient

        self._metric, self._param, self._tag, self._client_class = Metric, Param, RunTag, MlflowClient
        self.uri = uri
        self.folder = folder
        self.run_name = run_name
        self.tags = tags
        self.params = params
        self.experiment_name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "")
        self.experiment_id = os.environ.get("MLFLOW_EXPERIMENT_ID", "") or "0"
        self.continue_run = False
        self.error: str | None = None
        self.notes: collections.deque[str] = collections.deque()  # lines for the run's log
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="mlflow-tracking", daemon=True)

    def start(self, *, continue_run: bool) -> None:
        self.continue_run = continue_run
        self._thread.start()

    def metrics(self, values: dict[str, float], step: int) -> None:
        stamp = int(time.time() * 1000)
        self._queue.put([self._metric(key, float(value), stamp, step) for key, value in values.items()])

    def set_tags(self, tags: dict[str, str]) -> None:
        self._queue.put(tags)

    def end(self, status: str) -> None:
        self._queue.put(status)

    def close(self, wait: float) -> bool:
        """Send what is queued, waiting up to `wait` seconds; whether the thread is done."""
        self._queue.put(_STOP)
        self._thread.join(wait)
        return not self._thread.is_alive()

    def _work(self) -> None:
        try:
            client = self._client_class(tracking_uri=self.uri)
            run_id = self._open(client)
            while self._send(client, run_id):
                pass
        except Exception as exc:  # noqa: BLE001 - tracking never fails a run; the trainer reports it
            self.error = _describe(exc)

    def _open(self, client: Any) -> str:
        """The MLflow run: the one this run's folder names when continuing and MLflow still has
        it, else a new one with the run's params (its id then written to the folder)."""
        known = self._known_run(client) if self.continue_run else None
        if known is not None:
            client.update_run(known, status="RUNNING")
            self.notes.append(_("Continuing the MLflow run %(id)s.") % {"id": known})
            return known
        experiment = self.experiment_id
        if self.experiment_name:
            found = client.get_experiment_by_name(self.experiment_name)
            experiment = found.experiment_id if found else client.create_experiment(self.experiment_name)
        run_id = client.create_run(experiment, run_name=self.run_name, tags=self.tags).info.run_id
        params = [self._param(key, str(value)) for key, value in self.params.items()]
        client.log_batch(run_id, params=params)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / RUN_ID_FILE).write_text(run_id, encoding="utf-8")
        self.notes.append(_("Tracking in the MLflow run %(id)s (%(name)s).") % {"id": run_id, "name": self.run_name})
        return run_id

    def _known_run(self, client: Any) -> str | None:
        """The id in the run's folder, when MLflow still has that run (not deleted)."""
        from mlflow.exceptions import MlflowException

        path = self.folder / RUN_ID_FILE
        run_id = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        if not run_id:
            return None
        try:
            run = client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                self.notes.append(_("The MLflow run %(id)s is gone; starting a new one.") % {"id": run_id})
                return None
            raise
        return run_id if run.info.lifecycle_stage != "deleted" else None

    def _send(self, client: Any, run_id: str) -> bool:
        """Everything queued so far (metrics in one request); False after the stop mark."""
        items = [self._queue.get()]
        while len(items) < MAX_BATCH:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        metrics = [metric for item in items if isinstance(item, list) for metric in item]
        for start in range(0, len(metrics), MAX_BATCH):
            client.log_batch(run_id, metrics=metrics[start : start + MAX_BATCH])
        for item in items:
            if isinstance(item, dict):
                client.log_batch(run_id, tags=[self._tag(key, str(value)) for key, value in item.items()])
            elif item == _STOP:
                return False
            elif isinstance(item, str):
                client.set_terminated(run_id, status=item)
        return True


class Tracker:
    """TensorBoard and (with MLFLOW_TRACKING_URI) MLflow tracking of one training run.

    Use as a context manager around the training, which reports through `tracker.callbacks`:
    entering starts it, `finish(result)` logs the result, leaving closes it (an exception marks
    the MLflow run failed, a signal or Ctrl-C killed). `resumed`: the run continues from a
    checkpoint of an earlier attempt.
    """

    def __init__(
        self,
        config: TrainConfig,
        output_dir: Path,
        *,
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
        callbacks: Callbacks | None = None,
        resumed: bool = False,
    ) -> None:
        self.config = config
        self.folder = tracking_dir(output_dir)
        self.run_name = run_name or self.folder.parent.name
        self.tags = {"shikomi.method": config.method, "shikomi.base_model": config.base_model or EMBEDDED_NAME}
        self.tags.update({key: str(value) for key, value in (tags or {}).items()})
        self.resumed = resumed
        self.inner = callbacks or NoCallbacks()
        self.callbacks = _TrackedCallbacks(self.inner, self)
        self.enabled = os.environ.get("RANK", "0") == "0"
        self.mlflow: _MLflow | None = None
        self._writer: Any = None
        self._tensorboard_on = self.enabled
        self._last_train_step: int | None = None
        self._finished = False

    def __enter__(self) -> Tracker:
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, Exception):
            self.close(end="FAILED")
        else:  # stopped from outside (a signal, Ctrl-C): MLflow must not hold the stop up
            self.close(end="KILLED", wait=STOPPED_WAIT_SECONDS)

    def start(self) -> None:
        """Start the MLflow run (in the background) when MLFLOW_TRACKING_URI is set. The TensorBoard
        folder is opened at the first step, so a run refused before training leaves none."""
        uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
        if not self.enabled or not uri:
            return
        try:
            self.mlflow = _MLflow(
                uri, folder=self.folder, run_name=self.run_name, tags=self.tags, params=hyperparameters(self.config)
            )
            self.mlflow.start(continue_run=self.resumed)
        except Exception as exc:  # noqa: BLE001 - tracking never fails a run
            self.mlflow = None
            self._warn_mlflow(_describe(exc))

    def log(self, progress: Progress) -> None:
        """A step's progress: its training metrics once per step, the validation loss when there is one."""
        if not self.enabled:
            return
        values: dict[str, float] = {}
        if progress.train_loss is not None and progress.step != self._last_train_step:
            self._last_train_step = progress.step
            values.update({name: getattr(progress, field) for field, name in STEP_METRICS.items()})
        if progress.val_loss is not None:
            values[VAL_LOSS] = progress.val_loss
        self._scalars(values, progress.step, purge_from=progress.step)
        if self.mlflow is not None and values:
            self.mlflow.metrics(values, progress.step)
        self._report_mlflow()

    def finish(self, result: TrainResult) -> TrainResult:
        """Log how the run ended (final and best losses, tokens, seconds, device); `result` back."""
        self._finished = True
        if not self.enabled:
            return result
        values = {
            name: getattr(result, field) for field, name in RESULT_METRICS.items() if getattr(result, field) is not None
        }
        self._scalars(values, result.steps, purge_from=result.steps + 1)
        rows = [*((name, f"{value:g}") for name, value in values.items()), ("status", result.status)]
        writer = self._tensorboard(result.steps + 1)
        if writer is not None:
            self._guarded(writer.add_text, "result", _table([*rows, ("device", result.device)]), result.steps)
        if self.mlflow is not None:
            self.mlflow.metrics(values, result.steps)
            self.mlflow.set_tags({"shikomi.status": result.status, "shikomi.device": result.device})
            self.mlflow.end("KILLED" if result.status == "cancelled" else "FINISHED")
        return result

    def flush(self) -> None:
        """Write out the TensorBoard events logged so far."""
        if self._writer is not None:
            self._guarded(self._writer.flush)

    def close(self, *, end: str | None = None, wait: float = FLUSH_SECONDS) -> None:
        """Write out the TensorBoard events and send what MLflow still has queued, waiting up to
        `wait` seconds; `end`: the MLflow run's status when the run did not finish."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as exc:  # noqa: BLE001 - tracking never fails a run
                self._warn_tensorboard(_describe(exc))
            self._writer = None
        if self.mlflow is None:
            return
        if end is not None and not self._finished:
            self.mlflow.end(end)
        if not self.mlflow.close(wait) and self.mlflow.error is None:
            self.inner.on_message(
                _("MLflow did not take the last metrics within %(seconds)d s; they may be missing there.")
                % {"seconds": wait}
            )
        self._report_mlflow()
        self.mlflow = None

    # ---- TensorBoard ----------------------------------------------------------------------

    def _tensorboard(self, purge_from: int) -> Any:
        """The event writer, opened on first use. Resumed, it hides the earlier attempt's points
        from step `purge_from` on (steps trained again)."""
        if self._writer is None and self._tensorboard_on:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(
                    str(self.folder),
                    purge_step=purge_from if self.resumed else None,
                    flush_secs=TENSORBOARD_FLUSH_SECONDS,
                )
                if not self.resumed:
                    self._write_config()
            except Exception as exc:  # noqa: BLE001 - tracking never fails a run
                self._warn_tensorboard(_describe(exc))
        return self._writer

    def _write_config(self) -> None:
        """The configuration as a table, and as hyperparameters for TensorBoard's HParams view
        (against the losses)."""
        from torch.utils.tensorboard.summary import hparams

        params = hyperparameters(self.config)
        self._writer.add_text("config", _table([(key, str(value)) for key, value in params.items()]), 0)
        metrics = {name: 0.0 for name in ("train/loss", VAL_LOSS, RESULT_METRICS["best_val_loss"])}
        for summary in hparams(params, metrics):
            self._writer.file_writer.add_summary(summary)

    def _scalars(self, values: dict[str, float], step: int, *, purge_from: int) -> None:
        writer = self._tensorboard(purge_from) if values else None
        for name, value in values.items():
            if writer is None or not self._guarded(writer.add_scalar, name, value, step):
                return

    def _guarded(self, write: Any, *args: Any) -> bool:
        """`write(*args)`; False (and TensorBoard off) when it fails."""
        try:
            write(*args)
        except Exception as exc:  # noqa: BLE001 - tracking never fails a run
            self._warn_tensorboard(_describe(exc))
            return False
        return True

    def _warn_tensorboard(self, error: str) -> None:
        self._tensorboard_on = False
        self._writer = None
        self.inner.on_message(
            _("TensorBoard logging is off for the rest of this run (training goes on): %(error)s") % {"error": error}
        )

    # ---- MLflow ---------------------------------------------------------------------------

    def _report_mlflow(self) -> None:
        """The background thread's notes and its error, as lines of the run's log (once each)."""
        if self.mlflow is None:
            return
        while self.mlflow.notes:
            self.inner.on_message(self.mlflow.notes.popleft())
        if self.mlflow.error is not None:
            error, self.mlflow = self.mlflow.error, None
            self._warn_mlflow(error)

    def _warn_mlflow(self, error: str) -> None:
        self.inner.on_message(
            _("MLflow tracking is off for the rest of this run (training goes on): %(error)s") % {"error": error}
        )
