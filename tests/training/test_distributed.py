"""One run on two processes (training/engine/distributed.py), on the CPU with gloo and the tiny model,
started by the launcher the app uses (`train()` with SHIKOMI_PROCESSES, as the run's child sets it):
two processes with gradient accumulation 1 take the same steps as one process with gradient
accumulation 2, write one checkpoint folder, and a checkpoint of either layout resumes in the other
to the same losses.

Tolerance: relative 1e-4 on every loss (the gradients of the two layouts are summed in another
order; with no dropout nothing else differs)."""

from __future__ import annotations

import pytest

from tests.training.test_trainer import Recorder, examples, make_config
from training.engine import distributed
from training.engine.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")

TOLERANCE = 1e-4


def settings(model_dir, processes: int, **overrides):
    # 7 examples in batches of 1: two steps of 2 micro-batches an epoch, then a short one with 1
    # (under two processes, one of them has nothing to train in that step).
    values = {"batch_size": 1, "max_steps": 5, "gradient_accumulation": 2 // processes, "save_every": 2}
    return make_config(model_dir, **(values | overrides))


def run(monkeypatch, model_dir, folder, processes: int, **options):
    monkeypatch.setenv(distributed.PROCESSES, str(processes))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    recorder = Recorder(stop_after=options.pop("stop_after", None))
    config = settings(model_dir, processes, **options.pop("config", {}))
    result = train(config, examples(7), examples(2, start=20), folder, callbacks=recorder, **options)
    return result, recorder


def test_two_processes_take_the_steps_of_one_with_accumulation(tiny_model_dir, tmp_path, monkeypatch):
    one, one_log = run(monkeypatch, tiny_model_dir, tmp_path / "one", 1)
    two, two_log = run(monkeypatch, tiny_model_dir, tmp_path / "two", 2)

    assert [p.step for p in two_log.logs] == [1, 2, 3, 4, 5]
    assert [p.train_loss for p in two_log.logs] == pytest.approx([p.train_loss for p in one_log.logs], rel=TOLERANCE)
    assert two.final_val_loss == pytest.approx(one.final_val_loss, rel=TOLERANCE)
    assert two.tokens == one.tokens
    assert [p.epoch for p in two_log.logs] == pytest.approx([p.epoch for p in one_log.logs])

    # One checkpoint folder per save, written by the main process alone, and recorded once.
    assert sorted(path.name for path in (tmp_path / "two" / "checkpoints").iterdir()) == ["step-2", "step-4"]
    assert [step for _, step in two_log.checkpoints] == [2, 4]
    assert two.checkpoint == tmp_path / "two" / "checkpoints" / "step-4"
    assert (tmp_path / "two" / "shikomi_run.json").is_file()
    assert two.extra["processes"] == 2 and two.extra["devices"] == ["cpu", "cpu"]
    assert one.extra["processes"] == 1 and one.extra["precision"] == "no"
    assert two.extra["peak_memory_bytes"] > 0


@pytest.mark.parametrize(("first", "then"), [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_in_the_other_layout(tiny_model_dir, tmp_path, monkeypatch, first, then):
    whole, whole_log = run(monkeypatch, tiny_model_dir, tmp_path / "whole", 1)

    cancelled, _ = run(monkeypatch, tiny_model_dir, tmp_path / "parts", first, stop_after=2)
    assert cancelled.status == "cancelled" and cancelled.steps == 2
    assert cancelled.checkpoint == tmp_path / "parts" / "checkpoints" / "step-2"

    resumed, resumed_log = run(monkeypatch, tiny_model_dir, tmp_path / "parts", then, resume_from=cancelled.checkpoint)
    assert resumed.status == "done" and resumed.steps == 5
    assert [p.step for p in resumed_log.logs] == [3, 4, 5]
    expected = [p.train_loss for p in whole_log.logs[2:]]
    assert [p.train_loss for p in resumed_log.logs] == pytest.approx(expected, rel=TOLERANCE)
    assert resumed.final_val_loss == pytest.approx(whole.final_val_loss, rel=TOLERANCE)
    assert not any("will not match" in line for line in resumed_log.messages)


def test_a_missing_checkpoint_is_a_clear_error(tiny_model_dir, tmp_path, monkeypatch):
    gone = tmp_path / "checkpoints" / "step-3"
    with pytest.raises(FileNotFoundError, match="step-3 is not a checkpoint of this trainer"):
        run(monkeypatch, tiny_model_dir, tmp_path, 2, resume_from=gone)


def test_a_run_child_on_the_cpu_takes_the_processes_per_run_setting(settings, tmp_path):
    from training.runs.process import Slot, processes_per_run

    with open(tmp_path / "lock", "w") as handle:
        cpu, gpus = Slot("cpu", "", handle), Slot("cuda:0", "2,3", handle)
        settings.SHIKOMI_PROCESSES_PER_RUN = 2
        assert processes_per_run(cpu) == 2
        assert processes_per_run(gpus) == 2  # one process per GPU of the slot
        settings.SHIKOMI_PROCESSES_PER_RUN = "none"
        with pytest.raises(Exception, match="SHIKOMI_PROCESSES_PER_RUN takes a number"):
            processes_per_run(cpu)


def test_a_slot_of_several_gpus_is_taken_whole_or_not_at_all(settings, tmp_path, monkeypatch):
    """SHIKOMI_DEVICES "cuda:0+cuda:1,cuda:2": the first slot trains one run on two GPUs (two
    processes); a run on cuda:1 alone elsewhere on the machine keeps the pair from being taken."""
    from training.runs import process

    settings.DATA_DIR = tmp_path
    settings.SHIKOMI_DEVICES = ["cuda:0+cuda:1", "cuda:2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    assert process.consumer_devices() == ["cuda:0+cuda:1", "cuda:2"]
    pair = process._try_device("cuda:0+cuda:1", "run 1")
    assert pair is not None and pair.visible == "4,5" and process.processes_per_run(pair) == 2
    assert process._try_device("cuda:1", "run 2") is None  # held as part of the pair
    pair.release()
    single = process._try_device("cuda:1", "run 3")
    assert single is not None and process._try_device("cuda:0+cuda:1", "run 4") is None
    assert process._try_device("cuda:0", "run 5") is not None  # the pair let its first GPU go again
    settings.SHIKOMI_DEVICES = ["cuda:0+gpu:1"]
    with pytest.raises(Exception, match="'cuda:0\\+cuda:1'"):
        process.consumer_devices()
