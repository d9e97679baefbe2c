"""The launch form and the run page show and use only the settings of the run's method: a
value left in another method's (hidden) field neither blocks a launch nor reaches the run,
and a run's page lists only the settings that apply to its method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.training.conftest import make_run
from tests.training.test_views import approved, form_data, url
from training.engine.config import TrainConfig
from training.models import TrainingRun
from training.runs.forms import APPLIES_TO, applies


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path: Path) -> None:
    settings.ARTIFACT_DIR = tmp_path / "artifacts"


@pytest.fixture
def data(data) -> list:
    """The training data approved: a new run takes approved examples only, unless told otherwise."""
    return [approved(example) for example in data]


def launch(client, project, data: dict[str, Any], capture) -> Any:
    with capture():
        return client.post(url(project, "run_new"), data)


def section(page: str, anchor: str) -> str:
    start = page.index(anchor)
    return page[start : page.index("</section>", start)]


def test_each_section_of_the_form_names_the_methods_it_applies_to(client, project, users, data):
    client.force_login(users["admin"])
    page = client.get(url(project, "run_new")).content.decode()
    assert page.count('data-methods="lora qlora dpo"') == 1  # the adapter settings appear once
    assert page.count('data-methods="prefix prompt ptuning"') == 1
    assert page.count('data-methods="dpo"') == 1
    assert 'data-methods="lora qlora prefix prompt ptuning full"' in page  # the class balance
    assert page.count('name="lora_rank"') == 1 and page.count('name="learning_rate"') == 1
    assert "js/training.js" in page and "<noscript>" in page


def test_garbage_in_another_methods_field_does_not_stop_a_full_fine_tune(
    client, project, users, data, django_capture_on_commit_callbacks
):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new")))
    filled.update(
        {
            "method": "full",
            "learning_rate": "0.00002",
            "lora_rank": "banana",
            "lora_alpha": "-5",
            "lora_dropout": "9",
            "target_modules": ["no_such_module"],
            "target_modules_other": "evil, module",
            "num_virtual_tokens": "0",
            "dpo_beta": "",
        }
    )
    response = launch(client, project, filled, django_capture_on_commit_callbacks)
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response["Location"] == url(project, "run_detail", run.pk)
    assert run.method == "full" and run.config["learning_rate"] == 2e-5
    # What the hidden fields held never reached the run: they keep the preset's or default values.
    assert run.config["lora_rank"] == 8 and run.config["lora_alpha"] == 16 and run.config["lora_dropout"] == 0.05
    assert run.config["target_modules"] == TrainConfig().target_modules
    assert run.config["num_virtual_tokens"] == 16 and run.config["dpo_beta"] == 0.1


def test_a_dpo_launch_ignores_the_virtual_tokens_and_class_balance_but_checks_beta(client, project, users, data):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new")))
    filled.update({"method": "dpo", "num_virtual_tokens": "x", "balance": "nonsense", "dpo_beta": "50"})
    response = client.post(url(project, "run_new"), filled)
    form = response.context["form"]
    assert response.status_code == 200 and set(form.errors) == {"dpo_beta"}
    assert not TrainingRun.objects.exists()
    # The page keeps what was typed in the hidden fields, for when the method is switched back.
    assert form["num_virtual_tokens"].value() == "x"


def test_the_chosen_methods_own_settings_are_still_checked(client, project, users, data):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new")))
    filled.update({"method": "prompt", "num_virtual_tokens": "0", "lora_rank": "0", "target_modules": ["bogus"]})
    response = client.post(url(project, "run_new"), filled)
    assert set(response.context["form"].errors) == {"num_virtual_tokens"}
    assert not TrainingRun.objects.exists()


def test_a_lora_launch_still_checks_its_target_modules(client, project, users, data):
    client.force_login(users["admin"])
    filled = form_data(client.get(url(project, "run_new")))
    filled.update({"method": "lora", "target_modules": ["bogus"], "num_virtual_tokens": "nonsense"})
    response = client.post(url(project, "run_new"), filled)
    assert set(response.context["form"].errors) == {"target_modules"}


@pytest.mark.parametrize(
    ("method", "shown", "absent"),
    [
        (
            "full",
            ["Learning rate", "Class balance", "Reasoning"],
            ["LoRA rank", "Target modules", "Virtual tokens", "DPO beta"],
        ),
        ("lora", ["LoRA rank", "LoRA alpha", "Target modules", "Class balance"], ["Virtual tokens", "DPO beta"]),
        ("prompt", ["Virtual tokens", "Class balance"], ["LoRA rank", "LoRA dropout", "DPO beta"]),
        ("dpo", ["DPO beta", "LoRA rank", "Target modules", "Reasoning"], ["Virtual tokens", "Class balance"]),
    ],
)
def test_the_run_page_lists_only_the_settings_of_its_method(client, project, users, method, shown, absent):
    run = make_run(project, users["admin"], config={"method": method})
    client.force_login(users["annotator"])
    config = section(client.get(url(project, "run_detail", run.pk)).content.decode(), 'id="run-config"')
    for label in shown:
        assert f">{label}<" in config, label
    for label in absent:
        assert f">{label}<" not in config, label


def test_comparing_a_full_fine_tune_with_lora_shows_lora_settings_once_marked_as_not_applying(client, project, users):
    a = make_run(project, users["admin"], number=1, config={"method": "full"})
    b = make_run(project, users["admin"], number=2, config={"method": "lora"})
    client.force_login(users["admin"])
    response = client.get(url(project, "run_compare") + f"?a={a.pk}&b={b.pk}")
    rows = {label: (va, vb) for label, va, vb, _differs in response.context["rows"]}
    assert rows["LoRA rank"] == ("—", "8")
    assert "Virtual tokens" not in rows and "DPO beta" not in rows


def test_every_setting_named_in_applies_to_is_a_form_field_and_applies_somewhere():
    from training.engine.config import METHODS

    for name, methods in APPLIES_TO.items():
        assert methods and set(methods) <= set(METHODS), name
    assert applies("learning_rate", "full") and not applies("dpo_beta", "lora")
