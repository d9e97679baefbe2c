"""One run on several processes (one per GPU, or several on the CPU): how the processes are started,
how they share each optimiser step, and how the one that reports talks to the caller.

`train()` (training/engine/trainer.py) asks `processes_wanted()`; above 1 it calls `launch()`, which
starts `python -m torch.distributed.run --standalone --nproc_per_node N -m training.engine.trainer
SPEC` and waits for it. Every process (a "rank") runs the same loop on its share of each step. Only
the main rank reports: its callbacks are a `_Relay` that sends each call to the launching process
over a local socket and waits for the answer, so the callbacks (the database, the tracking) run in
the caller, once, in order, and a checkpoint is recorded before the next one can replace it.

The rules (docs/training.md, "Several devices"):

- An optimiser step takes `gradient_accumulation × processes` micro-batches of the one epoch order
  (`batch_order`); rank r trains micro-batches r, r + N, r + 2N... of it. One process with
  gradient accumulation 2 and two processes with 1 see the same examples in every step.
- The step's loss is the sum over every process's trained tokens of weight × token loss, divided by
  the step's trained tokens of all processes (all-reduced before the backward pass). Each rank's
  backward loss is its own sum × N / global tokens, since DistributedDataParallel averages the
  gradients: the gradient is the one process's gradient on the same global batch.
- Only the main rank writes checkpoints and the trained model; the others wait for it.

Which rank is which comes from Accelerate's `PartialState`, never from WORLD_SIZE alone: on a
machine without CUDA, Accelerate sees several processes only when told they are on the CPU.

Plain Python (no Django); torch and accelerate are imported inside the functions.
"""

from __future__ import annotations

import os
import pickle
import queue
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, Listener
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.engine.interface import Callbacks, NoCallbacks, TrainResult

if TYPE_CHECKING:
    import torch

# Set in a run's process by training/runs/process.py (or by hand, or a test): how many processes
# train the run. 1 or unset: the run trains in the calling process.
PROCESSES = "SHIKOMI_PROCESSES"
ADDRESS = "SHIKOMI_RANK_CALLBACKS"  # the launcher's socket and key, for the main rank
KEY = "SHIKOMI_RANK_KEY"
ENTRY = "training.engine.trainer"  # the module each rank runs (its __main__ calls `rank_main`)
POLL_SECONDS = 0.5
STOP_SECONDS = 5.0
LOG_TAIL = 3000


def processes_wanted() -> int:
    """SHIKOMI_PROCESSES, or 1; a rank itself never starts more."""
    if "LOCAL_RANK" in os.environ:
        return 1
    value = os.environ.get(PROCESSES, "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{PROCESSES} is {value!r}; it takes a number of processes, 1 or more.")
    return int(value)


# --- inside a rank ----------------------------------------------------------------------------


def precision(autocast: torch.dtype | None) -> str:
    """Accelerate's name of the mixed precision ("bf16", "fp16", "no")."""
    import torch

    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(autocast, "no")


def make_accelerator(precision: str, fsdp: Any = None) -> Any:
    """An `Accelerator` when this process is one of several (torchrun, accelerate launch), else
    None. Accelerate decides, told to use the CPU where there is no GPU, so that every rank knows
    its number and only one is the main one. `fsdp`: the FSDP plugin of a full fine-tuning that
    is split across the GPUs (training/engine/gpu.py), else None."""
    if "LOCAL_RANK" not in os.environ and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import Accelerator, PartialState

    cpu = not torch.cuda.is_available()
    if PartialState(cpu=cpu).num_processes <= 1:
        return None
    # No `gradient_accumulation_steps`: `Accelerator.backward` would divide the loss by it, and the
    # loss is already scaled for the whole step (`step_scale`); the micro-batches before the last
    # skip the gradient synchronisation through `no_sync`.
    return Accelerator(cpu=cpu, mixed_precision=precision, fsdp_plugin=fsdp)


def is_main(accelerator: Any) -> bool:
    return accelerator is None or accelerator.is_main_process


def processes(accelerator: Any) -> int:
    return 1 if accelerator is None else accelerator.num_processes


def epoch_steps(order: list[list[int]], accumulation: int, accelerator: Any) -> list[list[list[int]]]:
    """The epoch's optimiser steps, each the micro-batches (lists of example indices) that all the
    processes train together: `accumulation × processes` consecutive batches of `order`."""
    size = accumulation * processes(accelerator)
    return [order[start : start + size] for start in range(0, len(order), size)]


def share(step: list[list[int]], accelerator: Any) -> list[list[int]]:
    """This process's micro-batches of a step (possibly none in an epoch's short last step)."""
    if accelerator is None:
        return step
    return step[accelerator.process_index :: accelerator.num_processes]


def total(value: float, accelerator: Any, device: torch.device) -> float:
    """The sum of `value` over the processes."""
    if accelerator is None:
        return float(value)
    import torch

    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    return float(accelerator.reduce(tensor, reduction="sum").item())


def stop_requested(callbacks: Callbacks, accelerator: Any, device: torch.device) -> bool:
    """The main process asks the callbacks; every process hears the answer."""
    wanted = bool(callbacks.should_stop()) if is_main(accelerator) else False
    return total(1.0 if wanted else 0.0, accelerator, device) > 0 if accelerator is not None else wanted


def wait(accelerator: Any) -> None:
    if accelerator is not None:
        accelerator.wait_for_everyone()


def resources(device: torch.device, precision: str, accelerator: Any) -> dict[str, Any]:
    """Where the run trained, and the peak memory of its busiest process (bytes): allocated on the
    GPU, else the process's maximum resident set."""
    import torch

    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    devices = [str(device)]
    if accelerator is not None:
        from accelerate.utils import gather_object

        devices = gather_object(devices)
        peaks = accelerator.gather(torch.tensor([float(peak)], dtype=torch.float64, device=device))
        peak = int(peaks.max().item())
    return {
        "devices": devices,
        "processes": len(devices),
        "precision": precision,
        "peak_memory_bytes": int(peak),
        "peak_memory_kind": "cuda_allocated" if device.type == "cuda" else "max_rss",
    }


# --- the launcher -----------------------------------------------------------------------------


def launch(count: int, spec: dict[str, Any], callbacks: Callbacks) -> TrainResult:
    """Train `spec` (the arguments of `_train` but the callbacks) on `count` processes and wait;
    `callbacks` hear what the main rank reports. ValueError or RuntimeError with the rank's message
    when the run fails, as in one process."""
    with tempfile.TemporaryDirectory(prefix="shikomi-ranks-") as folder:
        spec_path = Path(folder) / "spec.pkl"
        spec_path.write_bytes(pickle.dumps(spec))
        key = os.urandom(32)
        listener = Listener(str(Path(folder) / "callbacks.sock"), family="AF_UNIX", authkey=key)
        log_path = Path(folder) / "ranks.log"
        with open(log_path, "wb") as log:
            ranks = subprocess.Popen(
                _command(count, spec_path), env=_environment(count, listener, key), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            outcome = _serve(listener, ranks, callbacks)
        finally:
            listener.close()
            _stop(ranks)
        return _ending(outcome, ranks.returncode, log_path)


def _command(count: int, spec_path: Path) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1",
        f"--nproc_per_node={count}", "-m", ENTRY, str(spec_path),
    ]  # fmt: skip


def _environment(count: int, listener: Listener, key: bytes) -> dict[str, str]:
    env = dict(os.environ)
    env[ADDRESS] = str(listener.address)
    env[KEY] = key.hex()
    env.pop(PROCESSES, None)
    # The threads of the caller shared between the ranks (the caller's OMP_NUM_THREADS is the run's).
    threads = int(env.get("OMP_NUM_THREADS", "0") or 0) or len(os.sched_getaffinity(0))
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(max(1, threads // count))
    return env


def _serve(listener: Listener, ranks: subprocess.Popen, callbacks: Callbacks) -> tuple[str, Any]:
    """Answer the main rank's calls until it ends; ("result", TrainResult), ("error", (kind, text))
    or ("lost", None) when the ranks ended without saying how."""
    accepted: queue.Queue[Connection] = queue.Queue()

    def accept() -> None:
        try:
            accepted.put(listener.accept())
        except OSError:
            pass  # closed: the ranks ended before the main one connected

    threading.Thread(target=accept, name="shikomi-rank-accept", daemon=True).start()
    connection = None
    while connection is None:
        try:
            connection = accepted.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if ranks.poll() is not None:
                return ("lost", None)
    with connection:
        while True:
            if not connection.poll(POLL_SECONDS):
                if ranks.poll() is not None and not connection.poll(0):
                    return ("lost", None)
                continue
            try:
                name, args = connection.recv()
            except EOFError:
                return ("lost", None)
            if name in ("result", "error"):
                connection.send(None)
                return (name, args[0] if name == "result" else args)
            connection.send(getattr(callbacks, name)(*args))


def _stop(ranks: subprocess.Popen) -> None:
    """Wait for the ranks a little, then stop them (the launcher failed, or they hang)."""
    try:
        ranks.wait(timeout=60)
        return
    except subprocess.TimeoutExpired:
        pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        ranks.send_signal(sig)
        try:
            ranks.wait(timeout=STOP_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def _ending(outcome: tuple[str, Any], returncode: int | None, log_path: Path) -> TrainResult:
    kind, value = outcome
    if kind == "result":
        return value
    if kind == "error":
        error, message = value
        known = {"ValueError": ValueError, "FileNotFoundError": FileNotFoundError, "RuntimeError": RuntimeError}
        raise known[error](message) if error in known else RuntimeError(f"{error}: {message}")
    tail = log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL:]
    raise RuntimeError(f"The training processes ended (status {returncode}) without a result:\n{tail}")


# --- a rank -----------------------------------------------------------------------------------


class _Relay:
    """The main rank's callbacks: every call goes to the launcher, which answers once it is done."""

    def __init__(self, address: str, key: bytes) -> None:
        self.connection = Client(address, family="AF_UNIX", authkey=key)

    def call(self, name: str, *args: Any) -> Any:
        self.connection.send((name, args))
        return self.connection.recv()

    def on_log(self, progress: Any) -> None:
        self.call("on_log", progress)

    def on_checkpoint(self, path: Path, step: int) -> None:
        self.call("on_checkpoint", path, step)

    def on_message(self, line: str) -> None:
        self.call("on_message", line)

    def should_stop(self) -> bool:
        return bool(self.call("should_stop"))


def _watch_parent() -> None:
    """Exit when the launcher (torchrun's agent, our parent) is gone: torchrun starts each rank in
    its own session, so a SIGKILL to the run's process group does not reach the ranks."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        os._exit(75)

    threading.Thread(target=watch, name="shikomi-rank-watch", daemon=True).start()


def rank_main(train: Callable[..., TrainResult], spec_path: str) -> None:
    """One rank: run `train` (the trainer's `_train`) on the spec; the main rank reports."""
    _watch_parent()
    spec = pickle.loads(Path(spec_path).read_bytes())
    main = int(os.environ.get("RANK", "0")) == 0
    relay = _Relay(os.environ[ADDRESS], bytes.fromhex(os.environ[KEY])) if main else None
    try:
        result = train(callbacks=relay or NoCallbacks(), **spec)
    except Exception as exc:
        if relay is not None:
            relay.call("error", type(exc).__name__, str(exc))
        raise
    if relay is not None:
        relay.call("result", result)
