from __future__ import annotations

import pytest

from curation.core.services import example_create
from curation.labeling import services as svc
from curation.workspace.dashboard import dashboard, stacked_bars
from tests.conftest import PASSWORD


def chat(i: int) -> list[dict]:
    return [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]


@pytest.fixture
def labelled(project, users):
    project.annotations_per_example = 2
    project.save()
    examples = [example_create(project=project, user=users["admin"], messages=chat(i), split="train") for i in range(6)]
    # annie and rhea agree on four examples and disagree on two.
    for i, example in enumerate(examples):
        svc.annotation_submit(example=example, user=users["annotator"], based_on_version=1, label="billing")
        other = "billing" if i < 4 else "shipping"
        svc.annotation_submit(example=example, user=users["reviewer"], based_on_version=example.version, label=other)
    return examples


def test_the_dashboard_measures_agreement_between_annotators(project, labelled):
    data = dashboard(project=project)
    agreement = data["agreement"]
    assert agreement["units"] == 6
    [pair] = agreement["pairs"]
    assert {pair["a"], pair["b"]} == {"annie", "rhea"} and pair["units"] == 6
    assert pair["kappa"] == pytest.approx(0.0)  # annie always said billing: no agreement beyond chance
    assert data["attention"]["disagreements"] == 2


def test_the_dashboard_counts_progress_per_annotator(project, labelled):
    progress = {p["user"]: p for p in dashboard(project=project)["progress"]}
    assert progress["annie"]["submitted"] == 6 and progress["rhea"]["submitted"] == 6
    assert progress["adam"]["submitted"] == 0


def test_bars_are_scaled_to_the_longest_row():
    bars = stacked_bars([("a", {"train": 2, "test": 2}), ("b", {"train": 1})], {"train": "#000", "test": "#fff"}, 100)
    assert [s.width for s in bars[0].segments] == [50, 50] and bars[0].segments[1].x == 50
    assert bars[1].segments[0].width == 25 and bars[1].y == 28


def test_the_project_page_draws_the_charts_with_a_fixed_number_of_queries(
    client, project, labelled, django_assert_max_num_queries
):
    client.login(username="adam", password=PASSWORD)
    with django_assert_max_num_queries(30):
        html = client.get(f"/p/{project.slug}/").content.decode()
    assert html.count("<svg") == 2 and "<rect" in html
    assert "Krippendorff" in html and "2</strong> disagreements" in html.replace("\n", "")
