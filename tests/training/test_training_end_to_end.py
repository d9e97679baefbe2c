"""Training runs on real components: the embedded SmolLM2 trained with LoRA through a real Huey
consumer, then evaluated there on the test split and judged blind by a reviewer in the browser's
pages; and a worker killed mid-run whose run ends interrupted and resumes from its checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from django.urls import reverse

from curation.core.services import example_create
from curation.models import Example
from tests.conftest import reap_after_lease, wait_for
from tests.training.conftest import chat
from training.evaluation.judging import left_system
from training.models import Comparison, Evaluation, TrainingPoint, TrainingRun
from training.runs.tasks import training_run_create, training_run_execute, training_run_resume


@pytest.fixture
def splits(project, users):
    for i in range(12):
        split = Example.Split.TEST if i >= 10 else Example.Split.VALIDATION if i >= 8 else Example.Split.TRAIN
        example_create(project=project, user=users["admin"], messages=chat(i), split=split)


def finished(run_id: int) -> TrainingRun | None:
    run = TrainingRun.objects.get(pk=run_id)
    return run if run.finished else None


def lora_b_norm(folder: Path) -> float:
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "adapter_model.safetensors"))
    return sum(float(t.abs().sum()) for name, t in tensors.items() if "lora_B" in name)


def test_a_lora_run_on_the_embedded_model_through_a_real_consumer_is_evaluated_and_judged(
    huey_consumer, project, users, splits, client
):
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

    from training.engine.modeling import load_trained

    tokenizer, model = load_trained(output)
    prompt = tokenizer.apply_chat_template(
        chat(3)[:1], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]

    # The finished run is evaluated on the test split by the same consumer.
    evaluation = wait_for(lambda: Evaluation.objects.filter(run=run, status__in=Evaluation.FINISHED).first(), 600, 1.0)
    assert evaluation.status == Evaluation.Status.DONE, evaluation.error
    samples = list(evaluation.samples.order_by("pk"))
    assert len(samples) == 2 and all(set(s.outputs) == {"base", "few_shot", "tuned"} for s in samples)
    assert all(s.outputs["tuned"].strip() for s in samples)
    assert evaluation.overall["tuned"]["chrf"] is not None and evaluation.overall["base"]["perplexity"] > 0

    # A reviewer judges one pair blind; the win rate on the evaluation page changes.
    page = reverse("evaluation_detail", args=[project.slug, evaluation.pk])
    client.force_login(users["reviewer"])
    assert "No judged pairs yet between the tuned model and the base model." in client.get(page).content.decode()
    comparison = Comparison.objects.filter(evaluation=evaluation, opponent="base", identical=False).first()
    if comparison is None:
        pytest.skip("the tuned and base answers are the same text: nothing to judge")
    tuned_side = "a" if left_system(comparison, str(users["reviewer"].pk)) == "tuned" else "b"
    response = client.post(reverse("judge_pair", args=[project.slug, comparison.key]), {"choice": tuned_side})
    assert response.status_code == 302
    html = client.get(page).content.decode()
    assert "tuned model wins 100% [21, 100] over base model on 1 judged pair" in html


def test_a_killed_worker_leaves_the_run_interrupted_and_it_resumes_from_its_checkpoint(
    huey_consumer, project, users, splits, tiny_model_dir, monkeypatch, settings
):
    # A person resumes it here; the automatic resume on another consumer is tests/scale_out's.
    settings.SHIKOMI_AUTO_RESUMES = 0
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
    assert reap_after_lease() == 1  # a live consumer, once the dead one's lease ran out
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.INTERRUPTED and "Resume" in run.error
    reached = int(Path(run.checkpoint).name.rsplit("-", 1)[1])

    run = training_run_resume(run=run)
    assert run.status == TrainingRun.Status.QUEUED and run.resumed == 1
    # Run the resumed run here (the consumer is gone) for two more steps, then cancel it.
    from training.runs import services

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
