from __future__ import annotations

from curation.core.services import example_create
from tests.conftest import PASSWORD


def test_content_from_users_is_escaped_everywhere_it_is_shown(client, project, users):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    example = example_create(
        project=project,
        user=users["admin"],
        messages=[{"role": "user", "content": evil}, {"role": "assistant", "content": evil}],
        metadata={"note": evil},
    )
    client.login(username="annie", password=PASSWORD)
    for page in (f"/p/{project.slug}/examples/", f"/p/{project.slug}/examples/{example.pk}/"):
        html = client.get(page).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html


def test_the_example_list_filters_by_label_and_returns_only_the_table_to_htmx(client, project, users):
    for i, label in enumerate(["billing", "billing", "shipping"]):
        example_create(
            project=project,
            user=users["admin"],
            label=label,
            messages=[{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": "a"}],
        )
    client.login(username="annie", password=PASSWORD)
    full = client.get(f"/p/{project.slug}/examples/", {"label": "shipping"}).content.decode()
    assert "question 2" in full and "question 0" not in full and "<html" in full
    partial = client.get(
        f"/p/{project.slug}/examples/", {"label": "billing"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="example-table"
    ).content.decode()
    assert "<html" not in partial and 'id="example-table"' in partial
    assert "question 0" in partial and "question 2" not in partial


def test_the_example_list_stays_at_a_fixed_number_of_queries(client, project, users, django_assert_max_num_queries):
    for i in range(40):
        example_create(
            project=project,
            user=users["admin"],
            label="billing",
            messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
        )
    client.login(username="annie", password=PASSWORD)
    with django_assert_max_num_queries(10):
        assert client.get(f"/p/{project.slug}/examples/").status_code == 200


def test_the_overview_counts_by_status_split_and_label(client, project, users):
    example_create(
        project=project,
        user=users["admin"],
        label="billing",
        split="train",
        status="approved",
        messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    )
    client.login(username="annie", password=PASSWORD)
    response = client.get(f"/p/{project.slug}/")
    counts = response.context["counts"]
    assert ("Train", 1) in counts["split"] and ("Approved", 1) in counts["status"]
    assert ("billing", 1) in counts["label"] and ("shipping", 0) in counts["label"]


def test_an_annotator_is_not_offered_import_or_export(client, project, users):
    client.login(username="annie", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/").content.decode()
    assert f"/p/{project.slug}/import/" not in html and f"/p/{project.slug}/export/" not in html
    client.login(username="adam", password=PASSWORD)
    html = client.get(f"/p/{project.slug}/").content.decode()
    assert f"/p/{project.slug}/import/" in html and f"/p/{project.slug}/export/" in html


def test_every_page_requires_signing_in(client, project):
    response = client.get(f"/p/{project.slug}/examples/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
