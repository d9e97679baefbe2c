from __future__ import annotations

import pytest

from curation.core.services import example_create
from curation.models import Example, ExampleRevision
from curation.splits.services import SplitRequest, balance_choose, balance_preview, splits_assign, splits_preview
from curation.splits.splitting import Ratios
from tests.conftest import PASSWORD


@pytest.fixture
def examples(project, users) -> list[Example]:
    rows = []
    for i in range(20):
        rows.append(
            example_create(
                project=project,
                user=users["admin"],
                label="billing" if i < 16 else "shipping",
                metadata={"customer": f"c{i // 4}"},
                messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
            )
        )
    return rows


def request(method="stratified", seed=7, **kw) -> SplitRequest:
    return SplitRequest(method, Ratios(0.5, 0.25, 0.25), seed, **kw)


def test_assigning_is_reproducible_and_recorded(project, users, examples):
    splits_assign(project=project, user=users["admin"], request=request())
    first = dict(Example.objects.values_list("pk", "split"))
    Example.objects.update(split="unassigned")
    splits_assign(project=project, user=users["admin"], request=request())
    assert dict(Example.objects.values_list("pk", "split")) == first
    project.refresh_from_db()
    assert project.split_config == {
        "method": "stratified",
        "ratios": [0.5, 0.25, 0.25],
        "seed": 7,
        "group_key": "",
        "only_unassigned": False,
    }


def test_every_moved_example_gets_a_revision(project, users, examples):
    moved = splits_assign(project=project, user=users["admin"], request=request())
    assert moved == 20
    assert (
        ExampleRevision.objects.filter(action="update", after__split__in=["train", "validation", "test"]).count() == 20
    )


def test_grouping_keeps_a_customer_in_one_split(project, users, examples):
    splits_assign(project=project, user=users["admin"], request=request("group", group_key="customer"))
    by_customer: dict[str, set[str]] = {}
    for example in Example.objects.all():
        by_customer.setdefault(example.metadata["customer"], set()).add(example.split)
    assert all(len(splits) == 1 for splits in by_customer.values())


def test_preview_writes_nothing_and_counts_labels_per_split(project, users, examples):
    preview = splits_preview(project=project, request=request())
    assert preview["total"] == 20 and preview["moved"] == 20
    assert preview["table"]["train"]["billing"] == 8 and preview["table"]["train"]["shipping"] == 2
    assert not Example.objects.exclude(split="unassigned").exists()


def test_balance_preview_shows_the_effect_before_it_is_chosen(project, users, examples):
    Example.objects.update(split="train")
    plan = balance_preview(project=project, strategy="oversample")
    assert plan.before == {"billing": 16, "shipping": 4} and plan.after == {"billing": 16, "shipping": 16}
    assert balance_preview(project=project, strategy="class_weights").weights["shipping"] == pytest.approx(2.5)
    balance_choose(project=project, strategy="undersample")
    project.refresh_from_db()
    assert project.balance_strategy == "undersample"


def test_the_splits_page_previews_then_assigns(client, project, users, examples):
    client.login(username="adam", password=PASSWORD)
    form = {"method": "random", "train": 0.5, "validation": 0.25, "test": 0.25, "seed": 1}
    html = client.get(f"/p/{project.slug}/splits/", {**form, "preview": 1}).content.decode()
    assert "Preview: 20 examples, 20 would move" in html
    assert '<th>Total</th><th class="num">10</th><th class="num">5</th><th class="num">5</th>' in html
    assert '<td>unassigned</td><td class="num">20</td>' in html
    assert not Example.objects.exclude(split="unassigned").exists()
    response = client.post(f"/p/{project.slug}/splits/", {**form, "action": "assign"})
    assert response.status_code == 302
    assert Example.objects.filter(split="train").count() == 10


def test_ratios_that_do_not_add_up_are_refused_with_a_message(client, project, users, examples):
    client.login(username="adam", password=PASSWORD)
    form = {"method": "random", "train": 0.8, "validation": 0.3, "test": 0.1, "seed": 1, "action": "assign"}
    response = client.post(f"/p/{project.slug}/splits/", form)
    assert response.status_code == 200 and "add up to" in response.content.decode()
    assert not Example.objects.exclude(split="unassigned").exists()


def test_a_group_key_that_is_not_a_plain_name_is_refused(project, users, examples):
    from curation.core.services import InvalidExample

    with pytest.raises(InvalidExample) as raised:
        splits_preview(project=project, request=request("group", group_key='customer"]'))
    assert raised.value.field == "group_key"


def test_the_splits_page_warns_when_finished_runs_used_the_current_splits(client, project, users):
    from training.models import TrainingRun

    client.force_login(users["admin"])
    assert "split-freeze" not in client.get(f"/p/{project.slug}/splits/").content.decode()
    TrainingRun.objects.create(project=project, number=3, status=TrainingRun.Status.DONE)
    TrainingRun.objects.create(project=project, number=4, status=TrainingRun.Status.FAILED)
    page = client.get(f"/p/{project.slug}/splits/").content.decode()
    assert 'id="split-freeze"' in page and "Training run 3 finished on the current splits" in page
