"""One process per run: a training run or an evaluation is worked on in a child process of the
consumer (as H2O LLM Studio does), pinned to one of the consumer's devices. Why not the worker's
own thread:

- the device: the parent holds a lock file per device (DATA_DIR/locks), shared by every consumer
  process on the machine, while its child runs, so runs on one device go one after the other and
  two runs never share a GPU; the child sees only its GPU (CUDA_VISIBLE_DEVICES), or on the CPU
  a set number of threads;
- memory: what the child loaded goes back to the system when it exits;
- imports: each child imports torch and transformers alone (two threads of one worker importing
  transformers at once crashed a run 3 times in 5);
- cancel: the parent looks at the row about once a second and stops the child (SIGTERM, then
  SIGKILL), without waiting for the step to end and a checkpoint to be written;
- a dead consumer: the child's watchdog exits when its parent goes, so a killed consumer leaves no
  trainer behind; the row's heartbeat then stops and a live consumer marks it interrupted
  (curation/core/background.py), which queues a training run again from its last checkpoint.

The child is `python -m training.runs.process <module:function> <id>`: it sets Django up itself,
on the parent's database, renews the leases it takes, and calls the function with the row's id;
the function claims the row (`Work.claim`) and records how the work ended, as it would in a thread.
A child that ends without that (killed, crashed) leaves the row failed, with how it ended.

SHIKOMI_RUN_IN_CHILD off (the tests' default: a process start costs seconds) runs the work in the
calling thread instead, without device locks. SHIKOMI_DEVICES names the devices a consumer may use
("cuda:0,cuda:1" or "cpu"; by default every CUDA device torch sees, else the CPU), and
SHIKOMI_CPU_THREADS the threads of a child on the CPU (0: every core the consumer may use).

A child given several devices (each GPU of its slot), or on the CPU with SHIKOMI_PROCESSES_PER_RUN
above 1, trains on that many processes: the trainer launches them under `torch.distributed.run`
(training/engine/distributed.py), told through SHIKOMI_PROCESSES. They stay in the child's process
group and watch their parent, so a cancel (SIGTERM to the group) and the watchdog reach them too;
the child alone holds the row, its lease and its heartbeat, and writes what the main rank reports.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, close_old_connections, connections
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from training.engine.distributed import PROCESSES

if TYPE_CHECKING:
    from curation.models import Work

log = logging.getLogger("shikomi.process")

POLL_SECONDS = 1.0  # how often the parent looks at the row (cancel) and at free devices
STOP_SECONDS = 5.0  # after SIGTERM, how long a child has before SIGKILL
WATCH_SECONDS = 0.5  # how often a child looks whether its parent is still there
PARENT_GONE = 75  # a child's exit status when its parent died (nobody reads it; for the log)

# Set in a child's environment: its parent's pid (the watchdog's), the database name the parent
# uses (the test database in tests), and the device it was given.
IN_CHILD = "SHIKOMI_CHILD_OF"
CHILD_DATABASE = "SHIKOMI_CHILD_DATABASE"
CHILD_DEVICE = "SHIKOMI_CHILD_DEVICE"

# A device slot: the CPU, one GPU, or several GPUs that train one run together ("cuda:0+cuda:1").
DEVICE = re.compile(r"cpu|cuda:\d+(?:\+cuda:\d+)*")


def run_in_child() -> bool:
    """Whether heavy work goes to a child process here: on unless SHIKOMI_RUN_IN_CHILD is off,
    and never from a child itself (an evaluation queued by a run's child runs where it is)."""
    return bool(getattr(settings, "SHIKOMI_RUN_IN_CHILD", True)) and IN_CHILD not in os.environ


# --- devices ---------------------------------------------------------------------------------

_detected: list[str] | None = None
_detecting = threading.Lock()


def consumer_devices() -> list[str]:
    """The devices this consumer's runs may use, one run on each at a time: SHIKOMI_DEVICES, else
    every CUDA device torch sees (counted through NVML: no CUDA context in this process), else
    the CPU."""
    global _detected
    configured = getattr(settings, "SHIKOMI_DEVICES", None) or []
    configured = [d.strip() for d in (configured.split(",") if isinstance(configured, str) else configured)]
    configured = [d for d in configured if d]
    if bad := [d for d in configured if not DEVICE.fullmatch(d)]:
        raise ImproperlyConfigured(
            "SHIKOMI_DEVICES takes 'cpu', 'cuda:N' or GPUs that train one run together ('cuda:0+cuda:1'), "
            f"separated by commas, not {', '.join(map(repr, bad))}"
        )
    if configured:
        return configured
    with _detecting:  # one import of torch at a time, and one count per process
        if _detected is None:
            import torch

            _detected = [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
        return list(_detected)


def cpu_threads() -> int:
    """Threads of a child on the CPU: SHIKOMI_CPU_THREADS, or every core this process may use."""
    if threads := int(getattr(settings, "SHIKOMI_CPU_THREADS", 0) or 0):
        return threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def processes_per_run(slot: Slot) -> int:
    """How many processes train a run in `slot`: one per GPU of the slot, or on the CPU
    SHIKOMI_PROCESSES_PER_RUN (setting or environment; 1 by default)."""
    if slot.device != "cpu":
        return max(1, len([d for d in slot.visible.split(",") if d.strip()]))
    value = getattr(settings, "SHIKOMI_PROCESSES_PER_RUN", None) or os.environ.get("SHIKOMI_PROCESSES_PER_RUN") or 1
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ImproperlyConfigured(f"SHIKOMI_PROCESSES_PER_RUN takes a number of processes, 1 or more, not {value!r}")
    return count


def _visible(device: str) -> str:
    """CUDA_VISIBLE_DEVICES for a child given `device` ("" on the CPU: it sees no GPU). A
    consumer's cuda:N is the Nth GPU of its own CUDA_VISIBLE_DEVICES when it has one."""
    if device == "cpu":
        return ""
    if "+" in device:
        return ",".join(_visible(part) for part in device.split("+"))
    index = int(device.split(":")[1])
    if "CUDA_VISIBLE_DEVICES" not in os.environ:
        return str(index)
    mine = [d.strip() for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    if index >= len(mine):
        raise ImproperlyConfigured(
            f"SHIKOMI_DEVICES names {device}, but this consumer sees only "
            f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r}"
        )
    return mine[index]


@dataclass
class Slot:
    """A device this process holds: the open lock file (closing it lets the device go)."""

    device: str  # as the consumer names it: "cpu", "cuda:1"
    visible: str  # the child's CUDA_VISIBLE_DEVICES: the GPU on the machine
    file: IO[str]
    more: list[IO[str]] = field(default_factory=list)  # the other GPUs' locks of a slot of several

    def release(self) -> None:
        for handle in (self.file, *self.more):
            handle.close()


def lock_path(device: str) -> Path:
    """The lock file of a device on this machine (a GPU by its machine-wide number), named with
    the host too, so that machines sharing a data folder over a network mount never share one."""
    name = "cpu" if device == "cpu" else "cuda-" + re.sub(r"[^A-Za-z0-9_.-]", "_", _visible(device))
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
    return Path(settings.DATA_DIR) / "locks" / f"device-{host}-{name}.lock"


def _try_device(device: str, holder: str) -> Slot | None:
    """The device locked for `holder`, or None while another run holds it; a slot of several
    GPUs is taken whole (each GPU's lock, in order) or not at all."""
    if "+" not in device:
        handle = _try_lock(device, holder)
        return None if handle is None else Slot(device, _visible(device), handle)
    handles: list[IO[str]] = []
    for part in device.split("+"):
        if (handle := _try_lock(part, holder)) is None:
            for taken in handles:
                taken.close()
            return None
        handles.append(handle)
    return Slot(device, _visible(device), handles[0], handles[1:])


def _try_lock(device: str, holder: str) -> IO[str] | None:
    path = lock_path(device)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until the run ends
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{holder}\n")  # who holds it, for an operator who looks
    handle.flush()
    return handle


def device_wait(
    *, holder: str, waiting: Callable[[], bool], on_wait: Callable[[list[str]], None] | None = None
) -> Slot | None:
    """The first free device of this consumer, locked for the caller. While every one is in use,
    wait, looking about once a second whether the work still waits (None once it does not: a
    queued run cancelled meanwhile). `on_wait` is told once that it waits, and for which."""
    devices, told = consumer_devices(), False
    while True:
        for device in devices:
            if (slot := _try_device(device, holder)) is not None:
                return slot
        if not waiting():
            return None
        if on_wait is not None and not told:
            on_wait(devices)
            told = True
        time.sleep(POLL_SECONDS)


# --- the parent ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ended:
    """How a child ended: `how` is "exited" (by itself), "cancelled" or "lost" (stopped by the
    parent: cancel asked, or the row taken from it), or "gone" (the row was deleted)."""

    how: str
    pid: int
    returncode: int
    device: str
    worker: str  # the name its claim wrote on the row (curation/models/leases.py: host:pid)


def work_in_child(
    *,
    model: type[Work],
    pk: int,
    target: str,
    cancellable: bool = False,
    on_wait: Callable[[list[str]], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> Ended | None:
    """Run `target` ("module:function", called with `pk`) in a child process on a free device of
    this consumer and wait for it; None when the row stopped waiting before a device was free.
    With `cancellable`, the row's `cancel_requested` stops the child. A child that exits leaving
    the row unfinished (killed, crashed) leaves it failed, saying how; a cancelled one is left
    running for the caller to record."""
    holder = f"{socket.gethostname()}:{os.getpid()} {model._meta.label_lower} {pk}"
    slot = device_wait(holder=holder, waiting=lambda: _waiting(model, pk), on_wait=on_wait)
    if slot is not None and not _waiting(model, pk):  # cancelled while it waited for the device
        slot.release()
        slot = None
    if slot is None:
        return None
    child: subprocess.Popen | None = None
    try:
        if on_start is not None:
            on_start(slot.device)
        child = _start(target, pk, slot)
        worker = f"{socket.gethostname()}:{child.pid}"[:200]
        log.info("%s %s: process %s on %s", model._meta.label_lower, pk, child.pid, slot.device)
        how = _watch(child, model, pk, worker, cancellable=cancellable)
    finally:
        if child is not None and child.poll() is None:
            stop(child)  # this thread failed while watching: the child must not outlive it
        slot.release()
    ended = Ended(how, child.pid, child.returncode, slot.device, worker)
    log.info("%s %s: process %s ended (%s, status %s)", model._meta.label_lower, pk, child.pid, how, child.returncode)
    if how == "exited":
        _fail_unfinished(model, pk, ended)
    return ended


def _waiting(model: type[Work], pk: int) -> bool:
    return model._default_manager.filter(pk=pk, status=model.WAITING).exists()


def _start(target: str, pk: int, slot: Slot) -> subprocess.Popen:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
    env[IN_CHILD] = str(os.getpid())
    env[CHILD_DATABASE] = str(connections["default"].settings_dict["NAME"])
    env[CHILD_DEVICE] = slot.device
    env["CUDA_VISIBLE_DEVICES"] = slot.visible
    if slot.device == "cpu":
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(cpu_threads())
    env.pop(PROCESSES, None)
    if (count := processes_per_run(slot)) > 1:
        env[PROCESSES] = str(count)  # the trainer shares the threads above between them
    return subprocess.Popen(
        [sys.executable, "-m", "training.runs.process", target, str(pk)],
        cwd=settings.BASE_DIR,
        env=env,
        # The child holds the device's lock too: were this process killed, the device stays
        # taken until the child has gone as well.
        pass_fds=(slot.file.fileno(),),
        # Its own process group: a Ctrl-C in the consumer's terminal is the consumer's to handle,
        # and stopping the child stops whatever processes it started.
        start_new_session=True,
    )


def _watch(child: subprocess.Popen, model: type[Work], pk: int, worker: str, *, cancellable: bool) -> str:
    """Wait for the child, looking at the row about once a second: stop the child when a cancel
    is asked, when the row is deleted, or when the row it had claimed is no longer its own (its
    lease ran out and another worker took it: two processes must not work on one row)."""
    fields = ["status", "worker"] + (["cancel_requested"] if cancellable else [])
    claimed = False
    while True:
        try:
            child.wait(timeout=POLL_SECONDS)
            return "exited"
        except subprocess.TimeoutExpired:
            pass
        try:
            row = model._default_manager.filter(pk=pk).values(*fields).first()
        except DatabaseError:
            log.warning("%s %s: cannot read the row; looking again in a second", model._meta.label_lower, pk)
            close_old_connections()
            continue
        how = None
        if row is None:
            how = "gone"
        elif row.get("cancel_requested"):
            how = "cancelled"
        elif row["status"] == model.RUNNING and row["worker"] == worker:
            claimed = True
        elif claimed and row["status"] in (model.RUNNING, model.WAITING, model.INTERRUPTED):
            how = "lost"
        if how is not None:
            stop(child)
            return how


def stop(child: subprocess.Popen, grace: float = STOP_SECONDS) -> None:
    """SIGTERM to the child's process group, SIGKILL if it is still there after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # gone already (a zombie's group may refuse signals on some systems)
        try:
            child.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
    child.wait()


def how_it_ended(returncode: int) -> str:
    """A child's exit status in words, for the row's error."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        if -returncode == signal.SIGKILL:
            return _("it was killed by signal %(signal)s (the machine may have run out of memory)") % {"signal": name}
        return _("it was killed by signal %(signal)s") % {"signal": name}
    if returncode > 0:
        return _("it exited with status %(code)s (the worker's log shows its error)") % {"code": returncode}
    return _("it exited without recording how the work ended")


def _fail_unfinished(model: type[Work], pk: int, ended: Ended) -> None:
    """The child exited and the row it claimed is still running under its name (or was never
    claimed): it died before it could record how the work ended."""
    message = _("The process working on it (pid %(pid)s) ended before it finished: %(how)s.") % {
        "pid": ended.pid,
        "how": how_it_ended(ended.returncode),
    }
    failed = (
        model._default_manager.filter(pk=pk)
        .filter(Q(status=model.RUNNING, worker=ended.worker) | Q(status=model.WAITING))
        .update(status=model.Status.FAILED, error=f"{message} {model.INTERRUPTED_MESSAGE}", finished_at=timezone.now())
    )
    if failed:
        log.error("%s %s failed: %s", model._meta.label_lower, pk, message)


# --- the child -------------------------------------------------------------------------------


def _watch_parent(parent: int) -> None:
    """Exit as soon as the parent is gone (a killed consumer must not leave a trainer running)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        print(f"process {os.getpid()}: parent {parent} is gone; stopping", file=sys.stderr, flush=True)
        os._exit(PARENT_GONE)

    threading.Thread(target=watch, name="shikomi-parent-watch", daemon=True).start()


def child_main(target: str, pk: int) -> None:
    """The child: watch the parent, set Django up on the parent's database, renew the leases it
    takes, and call the target with the row's id."""
    _watch_parent(int(os.environ[IN_CHILD]))
    import django

    if name := os.environ.get(CHILD_DATABASE):
        settings.DATABASES["default"]["NAME"] = name  # the parent's (in tests: the test database)
    django.setup()
    from curation.core.background import start_heartbeats

    start_heartbeats()
    module, _sep, function = target.partition(":")
    function_: Callable[[int], Any] = getattr(import_module(module), function)
    function_(pk)


if __name__ == "__main__":
    status = 0
    try:
        child_main(sys.argv[1], int(sys.argv[2]))
    except BaseException:  # noqa: BLE001 - the parent records the exit status; the log shows why
        traceback.print_exc()
        status = 1
    finally:
        connections.close_all()
        sys.stdout.flush()
        sys.stderr.flush()
    # Threads left by libraries (and the heartbeat) must not keep a finished child alive.
    os._exit(status)
