"""A finished run's model as a generation backend for the next round of drafts."""

from __future__ import annotations

import pytest

from curation.connections.backends import BackendChoiceError, backend_from_spec, backend_spec_clean
from curation.models import Project
from tests.training.conftest import chat
from training.engine.config import TrainConfig
from training.engine.interface import TrainExample
from training.engine.trainer import train
from training.models import TrainingRun
from training.runs.backend import TunedBackend


@pytest.fixture
def tuned_run(project, tiny_model_dir, tmp_path, one_thread):
    config = TrainConfig(base_model=str(tiny_model_dir), max_steps=1, batch_size=2, max_seq_length=64)
    result = train(config, [TrainExample(messages=chat(i)) for i in range(4)], [], tmp_path / "output")
    return TrainingRun.objects.create(
        project=project, number=1, status=TrainingRun.Status.DONE, output_dir=str(result.output_dir)
    )


def test_a_finished_run_generates_drafts(project, tuned_run):
    spec = backend_spec_clean({"kind": "tuned", "run": tuned_run.pk}, project)
    assert spec == {"kind": "tuned", "run": tuned_run.pk}
    backend = backend_from_spec(spec, project)
    assert isinstance(backend, TunedBackend) and backend.name == "tuned:support run 1"
    (reply,) = backend.generate([chat(2)[:1]], max_new_tokens=4)
    assert isinstance(reply, str)


def test_only_finished_runs_of_the_project_can_generate(project, tuned_run):
    other = Project.objects.create(name="Other", slug="other")
    with pytest.raises(BackendChoiceError) as caught:
        backend_spec_clean({"kind": "tuned", "run": tuned_run.pk}, other)
    assert caught.value.field == "run"
    TrainingRun.objects.filter(pk=tuned_run.pk).update(status=TrainingRun.Status.RUNNING)
    with pytest.raises(BackendChoiceError, match="no trained model yet"):
        backend_spec_clean({"kind": "tuned", "run": tuned_run.pk}, project)
    with pytest.raises(BackendChoiceError):
        backend_spec_clean({"kind": "tuned", "run": "x"}, project)
