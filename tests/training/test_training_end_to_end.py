"""Training runs on real components: the embedded SmolLM2 trained with LoRA through a real Huey
consumer, and a worker killed mid-run whose run ends interrupted and resumes from its checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from curation.models import Example
from curation.services import example_create
from tests.conftest import wait_for
from tests.training.conftest import chat
from training.models import TrainingPoint, TrainingRun
from training.services import (
    training_run_create,
    training_run_execute,
    training_run_resume,
    training_runs_mark_interrupted,
)


@pytest.fixture
def splits(project, users):
    for i in range(10):
        example_create(
            project=project,
            user=users["admin"],
            messages=chat(i),
            split=Example.Split.VALIDATION if i >= 8 else Example.Split.TRAIN,
        )


def finished(run_id: int) -> TrainingRun | None:
    run = TrainingRun.objects.get(pk=run_id)
    return run if run.finished else None


def lora_b_norm(folder: Path) -> float:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "adapter_model.safetensors"))
    return sum(float(t.abs().sum()) for name, t in tensors.items() if "lora_B" in name)


def test_a_lora_run_on_the_embedded_model_through_a_real_consumer(huey_consumer, project, users, splits):
    run = training_run_create(
        project=project,
        user=users["admin"],
        preset="quick_cpu_demo",
        config={"max_steps": 2, "batch_size": 2, "max_seq_length": 128, "eval_every": 2, "learning_rate": 1e-3},
    )
    run = wait_for(lambda: finished(run.pk), timeout=600, interval=1.0)
    assert run.status == TrainingRun.Status.DONE, (run.error, run.log)
    assert run.device.startswith("cpu") and (run.step, run.total_steps) == (2, 2)
    points = list(TrainingPoint.objects.filter(run=run))
    assert [p.step for p in points] == [1, 2]
    assert all(math.isfinite(p.train_loss) for p in points) and points[-1].val_loss is not None
    output = Path(run.output_dir)
    assert (output / "adapter_config.json").is_file() and (output / "shikomi_run.json").is_file()
    assert lora_b_norm(output) > 0  # LoRA's B starts at zero: any weight there was trained

    from training.modeling import load_trained

    tokenizer, model = load_trained(output)
    prompt = tokenizer.apply_chat_template(
        chat(3)[:1], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


def test_a_killed_worker_leaves_the_run_interrupted_and_it_resumes_from_its_checkpoint(
    huey_consumer, project, users, splits, tiny_model_dir, monkeypatch
):
    run = training_run_create(
        project=project,
        user=users["admin"],
        config={
            "base_model": str(tiny_model_dir),
            "max_steps": 400,
            "batch_size": 2,
            "save_every": 1,
            "max_seq_length": 64,
            "lr_scheduler": "constant",
        },
    )
    wait_for(
        lambda: TrainingRun.objects.get(pk=run.pk).step >= 3 and TrainingRun.objects.get(pk=run.pk).checkpoint,
        timeout=300,
        interval=0.05,
    )
    huey_consumer.kill()
    huey_consumer.wait(timeout=20)
    assert training_runs_mark_interrupted() == 1  # what `manage.py serve` does when it starts again
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.INTERRUPTED and "Resume" in run.error
    reached = int(Path(run.checkpoint).name.rsplit("-", 1)[1])

    run = training_run_resume(run=run)
    assert run.status == TrainingRun.Status.QUEUED and run.resumed == 1
    # Run the resumed run here (the consumer is gone) for two more steps, then cancel it.
    from training import services

    real_on_log = services.DatabaseCallbacks.on_log

    def on_log(self, progress):
        real_on_log(self, progress)
        if progress.step >= reached + 2:
            TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    monkeypatch.setattr(services.DatabaseCallbacks, "on_log", on_log)
    run = training_run_execute(run=run)
    assert run.status == TrainingRun.Status.CANCELLED, (run.error, run.log)
    assert run.step == reached + 2 and "resuming from" in run.log
    assert run.config["max_steps"] == 400  # resumed with the same configuration
    steps = list(TrainingPoint.objects.filter(run=run).values_list("step", flat=True))
    assert steps == list(range(1, reached + 3))
