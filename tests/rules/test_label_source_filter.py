"""The examples browser and API filter by where a label came from: a person, rules, or none."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation.rules.accepting import weak_labels_accept
from tests.rules.weak import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def accepted(project, users):
    run = make_run(project, users["admin"])
    assert weak_labels_accept(run=run, user=users["admin"], threshold=0.6, source="majority") == 2
    return run


def texts(examples) -> list[str]:
    return sorted(e["messages"][0]["content"] for e in examples)


def test_the_api_filters_examples_by_label_source(project, users, accepted):
    api = APIClient()
    api.force_authenticate(users["reviewer"])
    url = f"/api/projects/{project.slug}/examples/"

    def listed(source: str) -> list[str]:
        return texts(api.get(url, {"label_source": source}).json()["results"])

    assert listed("rules") == ["u1", "u2"]
    assert listed("person") == ["g1", "g2", "g3", "g4"]
    assert listed("none") == ["u3"]


def test_the_examples_page_offers_the_filter_and_applies_it(client, project, users, accepted):
    client.force_login(users["reviewer"])

    page = client.get(f"/p/{project.slug}/examples/", {"label_source": "rules"}).content.decode()

    assert 'name="label_source"' in page
    assert "u1" in page and "u2" in page and "g1" not in page


def test_the_project_page_counts_labels_by_where_they_came_from(client, project, users, accepted):
    client.force_login(users["reviewer"])

    page = client.get(f"/p/{project.slug}/")

    counts = dict(page.context["counts"]["label_source"])
    assert (counts["A person"], counts["Rules"], counts["No label"]) == (4, 2, 1)
    assert "Label from" in page.content.decode()
