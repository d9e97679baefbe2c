"""The quality pages and API: roles checked on the server, content escaped, actions work."""

from __future__ import annotations

import pytest

from curation.models import Example, ExampleCheck, QualityScan
from tests.conftest import PASSWORD
from tests.quality.conftest import add, run_scan

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> {{ secret }} mail evil@example.com"


@pytest.fixture
def scanned(corpus, project, users, django_capture_on_commit_callbacks):
    add(project, users["admin"], HOSTILE, split="train")
    add(project, users["admin"], HOSTILE + " !", split="test")
    return run_scan(project, users["admin"], django_capture_on_commit_callbacks)


def login(client, users, role: str):
    assert client.login(username=users[role].username, password=PASSWORD)
    return client


def test_members_see_the_readiness_report_but_only_admins_run_checks(client, project, users, corpus):
    login(client, users, "annotator")
    page = client.get(f"/p/{project.slug}/quality/").content.decode()
    assert 'data-key="leakage"' in page and 'id="run-check"' not in page and "quality-settings" not in page
    assert client.post(f"/p/{project.slug}/quality/scan/").status_code == 403
    assert not QualityScan.objects.exists()
    login(client, users, "admin")
    page = client.get(f"/p/{project.slug}/quality/").content.decode()
    assert 'id="run-check"' in page
    assert client.post(f"/p/{project.slug}/quality/scan/").status_code == 302
    assert QualityScan.objects.get().status == QualityScan.Status.QUEUED


def test_settings_are_validated_per_field(client, project, users):
    login(client, users, "admin")
    response = client.post(
        f"/p/{project.slug}/quality/settings/",
        {"dedupe_threshold": "2", "semantic_threshold": "0.95", "max_seq_length": "2048", "structured_format": "json"},
    )
    assert response.status_code == 400
    assert "Ensure this value is less than or equal to 1.0" in response.content.decode()
    project.refresh_from_db()
    assert project.dedupe_threshold == 0.8


def test_duplicates_show_the_words_that_differ_and_escape_content(client, project, users, scanned):
    login(client, users, "reviewer")
    page = client.get(f"/p/{project.slug}/quality/duplicates/").content.decode()
    assert "<del>yesterday</del>" in page and "<ins>today</ins>" in page
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "&lt;script&gt;" in page
    assert "Keep the chosen one" not in page  # reviewers look; admins resolve


def test_the_duplicates_page_reads_a_fixed_number_of_queries(
    client, project, users, scanned, django_assert_max_num_queries
):
    login(client, users, "admin")
    # One query more than before for why each member is listed (its closest pair), and the
    # project menu's counts.
    with django_assert_max_num_queries(15):
        assert client.get(f"/p/{project.slug}/quality/duplicates/?show=all").status_code == 200


def test_only_admins_resolve_duplicates(client, project, users, scanned, corpus):
    cluster = ExampleCheck.objects.get(example=corpus["original"]).cluster
    url = f"/p/{project.slug}/quality/duplicates/{cluster.pk}/resolve/"
    login(client, users, "reviewer")
    assert client.post(url, {"keep": corpus["original"].pk}).status_code == 403
    login(client, users, "admin")
    assert client.post(url, {"keep": corpus["original"].pk, "mode": "keep"}).status_code == 302
    assert not Example.objects.filter(pk=corpus["near_copy"].pk).exists()


def test_personal_data_is_highlighted_as_text_and_an_annotator_can_redact_one(client, project, users, scanned, corpus):
    login(client, users, "annotator")
    page = client.get(f"/p/{project.slug}/quality/pii/").content.decode()
    assert '<mark class="pii pii-email">taro.yamada@example.com<small>email</small></mark>' in page
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    assert 'id="redact-all"' not in page
    example = corpus["pii"]
    response = client.post(f"/p/{project.slug}/quality/pii/{example.pk}/redact/", {"version": example.version})
    assert response.status_code == 302
    example.refresh_from_db()
    assert "[EMAIL]" in example.messages[0]["content"]
    assert client.post(f"/p/{project.slug}/quality/pii/redact/", {"kind": ["email"]}).status_code == 403


def test_a_stale_redaction_is_refused_with_a_message(client, project, users, scanned, corpus):
    login(client, users, "admin")
    example = corpus["pii"]
    response = client.post(
        f"/p/{project.slug}/quality/pii/{example.pk}/redact/", {"version": example.version - 1}, follow=True
    )
    assert "changed by someone else" in response.content.decode()
    example.refresh_from_db()
    assert "[EMAIL]" not in example.messages[0]["content"]


def test_leakage_page_lists_the_leaks_and_admins_move_them_to_training(client, project, users, scanned, corpus):
    login(client, users, "admin")
    page = client.get(f"/p/{project.slug}/quality/leakage/").content.decode()
    assert f"#{corpus['exact_copy'].pk}" in page and f"#{corpus['near_copy'].pk}" in page
    assert client.post(f"/p/{project.slug}/quality/leakage/fix/").status_code == 302
    assert Example.objects.get(pk=corpus["exact_copy"].pk).split == "train"
    assert 'id="no-leaks"' in client.get(f"/p/{project.slug}/quality/leakage/").content.decode()


def test_the_example_list_filters_by_a_quality_finding(client, project, users, scanned, corpus):
    login(client, users, "annotator")
    page = client.get(f"/p/{project.slug}/examples/?check=pii").content.decode()
    assert f"/examples/{corpus['pii'].pk}/" in page and f"/examples/{corpus['plain'].pk}/" not in page
    page = client.get(f"/p/{project.slug}/examples/?check=leak").content.decode()
    assert f"/examples/{corpus['exact_copy'].pk}/" in page and f"/examples/{corpus['original'].pk}/" not in page


def test_the_dashboard_shows_the_token_histogram(client, project, users, scanned):
    login(client, users, "annotator")
    page = client.get(f"/p/{project.slug}/").content.decode()
    assert 'id="length-histogram"' in page


def test_the_api_reports_readiness_and_runs_one_check_at_a_time(client, project, users, corpus):
    login(client, users, "reviewer")
    data = client.get(f"/api/projects/{project.slug}/quality/").json()
    assert data["status"] == "fail" and {line["key"] for line in data["lines"]} >= {"size", "leakage", "pii"}
    assert client.post(f"/api/projects/{project.slug}/quality/scans/").status_code == 403
    login(client, users, "admin")
    assert client.post(f"/api/projects/{project.slug}/quality/scans/").status_code == 202
    assert client.post(f"/api/projects/{project.slug}/quality/scans/").status_code == 409


def test_the_api_resolves_clusters_and_redacts(client, project, users, scanned, corpus):
    login(client, users, "admin")
    clusters = client.get(f"/api/projects/{project.slug}/quality/duplicates/").json()["results"]
    cluster = next(c for c in clusters if corpus["original"].pk in c["members"])
    url = f"/api/projects/{project.slug}/quality/duplicates/{cluster['id']}/resolve/"
    bad = client.post(url, {"keep": corpus["plain"].pk}, content_type="application/json")
    assert bad.status_code == 400 and "keep" in bad.json()
    ok = client.post(url, {"keep": corpus["original"].pk, "mode": "merge"}, content_type="application/json")
    assert ok.status_code == 200 and ok.json()["resolution"] == "merged"
    findings = client.get(f"/api/projects/{project.slug}/quality/pii/").json()["results"]
    assert {f["kind"] for row in findings for f in row["findings"]} >= {"email", "phone"}
    result = client.post(
        f"/api/projects/{project.slug}/quality/pii/redact/",
        {"ids": [corpus["pii"].pk], "kinds": ["email"]},
        content_type="application/json",
    ).json()
    assert result == {"changed": 1, "replaced": 1}
    content = Example.objects.get(pk=corpus["pii"].pk).messages[0]["content"]
    assert "[EMAIL]" in content and "090-1234-5678" in content
