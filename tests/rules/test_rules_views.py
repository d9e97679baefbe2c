"""The weak-supervision pages: writing rules with a live preview, applying them, reading the
analysis, accepting weak labels, and who may do any of it."""

from __future__ import annotations

import pytest

from curation.core.services import example_create
from curation.models import Example, LabelingRule, Project, RuleRun
from curation.rules import spec as S
from curation.rules.services import rule_create, rule_update
from curation.workspace.navigation import MENU_QUERIES
from tests.conftest import PASSWORD
from tests.rules.conftest import chat


@pytest.fixture
def adam(client, users):
    client.login(username="adam", password=PASSWORD)
    return client


def rule_form(**changes) -> dict:
    data = {
        "name": "refund",
        "kind": "keywords",
        "label": "billing",
        "target": "user",
        "active": "on",
        "keywords_keywords": "refund\ninvoice, charged",
        "keywords_mode": "any",
        "keywords_whole_word": "on",
        "keywords_fold_width": "on",
        "regex_fold_width": "on",
        "length_unit": "words",
        "metadata_op": "equals",
        "similarity_threshold": "0.8",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def make_rules(project, admin, count: int = 3) -> list[LabelingRule]:
    specs = [
        ("billing words", S.KEYWORDS, {"keywords": "refund, invoice, charged, charge"}, "billing"),
        ("parcel", S.KEYWORDS, {"keywords": "parcel, tracking, ship"}, "shipping"),
        ("amounts", S.REGEX, {"pattern": r"amount|cost|duplicate"}, "billing"),
    ]
    specs += [(f"rule {i}", S.KEYWORDS, {"keywords": f"word{i}"}, "billing") for i in range(count - len(specs))]
    return [
        rule_create(project=project, user=admin, name=name, kind=kind, params=params, label=label, target="user")
        for name, kind, params, label in specs[:count]
    ]


def apply_rules(client, project, django_capture_on_commit_callbacks) -> RuleRun:
    with django_capture_on_commit_callbacks(execute=True):  # the Huey task runs inline in tests
        response = client.post(f"/p/{project.slug}/rules/apply/")
    run = RuleRun.objects.get(project=project, number=RuleRun.objects.filter(project=project).count())
    assert response.status_code == 302 and response["Location"] == f"/p/{project.slug}/rules/runs/{run.pk}/"
    return run


def test_an_admin_creates_a_rule_through_the_form_and_its_parameters_are_parsed(adam, project, corpus):
    response = adam.post(f"/p/{project.slug}/rules/new/", rule_form(keywords_case_sensitive=None))
    rule = LabelingRule.objects.get(project=project)
    assert response.status_code == 302 and response["Location"] == f"/p/{project.slug}/rules/{rule.pk}/"
    assert (rule.name, rule.kind, rule.label.name, rule.target, rule.active) == (
        "refund",
        "keywords",
        "billing",
        "user",
        True,
    )
    assert rule.params == {
        "keywords": ["refund", "invoice", "charged"],
        "mode": "any",
        "whole_word": True,
        "case_sensitive": False,
        "fold_width": True,
    }
    # Only the chosen kind's parameters are kept, though every kind's fields were sent.
    assert "threshold" not in rule.params and "unit" not in rule.params
    assert rule.revisions.get().stats["saved"]["hits"] == 6


def test_the_new_rule_page_offers_every_kind_and_the_project_labels(adam, project):
    html = adam.get(f"/p/{project.slug}/rules/new/").content.decode()
    for kind in S.KINDS:
        assert f'data-kind="{kind}"' in html
    assert '<option value="billing" selected>' in html and '<option value="shipping">' in html
    assert f'hx-post="/p/{project.slug}/rules/preview/"' in html
    assert 'hx-trigger="input changed delay:300ms, change"' in html


def test_the_preview_shows_the_hits_accuracy_and_marks_the_matched_word(adam, project, corpus):
    response = adam.post(f"/p/{project.slug}/rules/preview/", rule_form(name="", keywords_keywords="refund, parcel"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "6 of 12 examples hit (50%)" in html
    assert "1 of 3 correct (33%)" in html
    assert "Please <mark>refund</mark> the duplicate charge" in html
    assert LabelingRule.objects.count() == 0  # a preview saves nothing


def test_the_preview_says_when_no_labeled_example_was_hit(adam, project, corpus):
    html = adam.post(f"/p/{project.slug}/rules/preview/", rule_form(keywords_keywords="grinder")).content.decode()
    assert "1 of 12 examples hit" in html and "No labeled example hit yet" in html


def test_the_preview_escapes_what_an_example_contains(adam, project, users):
    example_create(
        project=project,
        user=users["admin"],
        messages=chat('refund <script>alert(1)</script> <b onmouseover="x()">now</b>'),
    )
    html = adam.post(f"/p/{project.slug}/rules/preview/", rule_form(keywords_keywords="refund")).content.decode()
    assert "<mark>refund</mark> &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html and "<b onmouseover" not in html


def test_a_keyword_with_markup_is_escaped_inside_the_mark(adam, project, users):
    example_create(project=project, user=users["admin"], messages=chat("please see <i>here</i>"))
    html = adam.post(
        f"/p/{project.slug}/rules/preview/", rule_form(keywords_keywords="<i>", keywords_whole_word=None)
    ).content.decode()
    assert "<mark>&lt;i&gt;</mark>here" in html and "<i>" not in html


def test_a_model_backed_preview_says_it_looked_at_the_first_examples_only(adam, project, users, corpus, monkeypatch):
    class Backend:
        name = "fake"

        def generate(self, conversations, *, max_new_tokens=64, temperature=0.0):
            return ["billing" if "refund" in c[-1]["content"].lower() else "none" for c in conversations]

    monkeypatch.setattr("llm.local.default_backend", lambda: Backend())
    example_create(project=project, user=users["admin"], messages=chat("One more refund please"))
    html = adam.post(
        f"/p/{project.slug}/rules/preview/", rule_form(kind="llm", llm_instruction="Money questions are billing.")
    ).content.decode()
    assert "<strong>3 of 12 examples hit (25%)</strong>" in html
    assert "the preview looked at the first 12 of 13 examples only" in html


def test_a_back_reference_is_refused_next_to_the_pattern_field_and_nothing_is_saved(adam, project, corpus):
    bad = rule_form(kind="regex", regex_pattern=r"(a)\1")
    response = adam.post(f"/p/{project.slug}/rules/new/", bad)
    html = response.content.decode()
    assert response.status_code == 400
    assert '<span class="error" id="error-regex_pattern">Back-references such as \\1 are not supported' in html
    assert f'value="{bad["regex_pattern"]}"' in html  # what was typed is kept
    assert not LabelingRule.objects.exists()

    preview = adam.post(f"/p/{project.slug}/rules/preview/", bad).content.decode()
    assert "Pattern: Back-references such as \\1 are not supported" in preview
    assert '<span class="error" id="error-regex_pattern" hx-swap-oob="true">Back-references' in preview
    assert '<span class="error" id="error-keywords_keywords" hx-swap-oob="true"></span>' in preview


def test_a_stray_value_in_another_kind_does_not_block_the_chosen_one(adam, project, corpus):
    response = adam.post(f"/p/{project.slug}/rules/new/", rule_form(length_min="lots"))
    assert response.status_code == 302 and LabelingRule.objects.get().kind == "keywords"


def test_a_duplicate_name_is_refused_next_to_the_name(adam, project, users, corpus):
    make_rules(project, users["admin"], 1)
    html = adam.post(f"/p/{project.slug}/rules/new/", rule_form(name="billing words")).content.decode()
    assert '<span class="error" id="error-name">A rule with this name exists already.</span>' in html
    assert LabelingRule.objects.count() == 1


def test_editing_makes_a_new_version_and_the_history_shows_what_changed_and_how_it_did(adam, project, corpus):
    adam.post(f"/p/{project.slug}/rules/new/", rule_form(keywords_keywords="refund, parcel"))
    rule = LabelingRule.objects.get()
    response = adam.post(
        f"/p/{project.slug}/rules/{rule.pk}/",
        rule_form(keywords_keywords="refund, charged, invoice", version="1"),
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.version == 2 and rule.params["keywords"] == ["refund", "charged", "invoice"]
    html = adam.get(f"/p/{project.slug}/rules/{rule.pk}/").content.decode()
    assert "<del>refund, parcel</del> → <ins>refund, charged, invoice</ins>" in html
    assert "accuracy 33% (1 of 3 labeled)" in html and "accuracy 100% (3 of 3 labeled)" in html
    assert 'name="version" value="2"' in html


def test_a_stale_edit_says_someone_else_changed_the_rule_and_keeps_what_was_typed(adam, project, users, corpus):
    rule = make_rules(project, users["admin"], 1)[0]
    rule_update(rule=rule, user=users["superuser"], version=1, name="someone else's name")
    response = adam.post(
        f"/p/{project.slug}/rules/{rule.pk}/", rule_form(name="my name", keywords_keywords="mine", version="1")
    )
    html = response.content.decode()
    assert response.status_code == 409
    assert "Someone else changed this rule while you were editing: it is now version 2 (saved by root)" in html
    assert "someone else&#x27;s name" in html  # their version is shown
    assert 'value="my name"' in html and ">\nmine</textarea>" in html  # and what was typed is kept
    assert 'name="version" value="2"' in html  # saving again replaces theirs, on purpose
    rule.refresh_from_db()
    assert (rule.name, rule.version) == ("someone else's name", 2)


def test_deleting_a_rule(adam, project, users):
    rule = make_rules(project, users["admin"], 1)[0]
    html = adam.get(f"/p/{project.slug}/rules/{rule.pk}/").content.decode()
    assert f'action="/p/{project.slug}/rules/{rule.pk}/delete/" data-confirm="Delete the rule billing words' in html
    response = adam.post(f"/p/{project.slug}/rules/{rule.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == f"/p/{project.slug}/rules/"
    assert not LabelingRule.objects.exists()


def test_applying_rules_makes_a_run_whose_page_shows_the_analysis_and_both_models(
    adam, project, users, corpus, django_capture_on_commit_callbacks
):
    make_rules(project, users["admin"])
    run = apply_rules(adam, project, django_capture_on_commit_callbacks)
    run.refresh_from_db()
    assert run.status == RuleRun.Status.DONE, run.error
    html = adam.get(f"/p/{project.slug}/rules/runs/{run.pk}/").content.decode()
    assert "Rule set v1" in html and 'id="rule-analysis"' in html
    assert ">billing words</a>" in html and "Empirical accuracy" in html
    assert "Label model" in html and "Majority vote" in html and "F1 for shipping" in html
    assert 'id="majority-note"' not in html and 'hx-trigger="every 1s"' not in html
    assert "Class balance used" in html and "uniform (fewer than 10 human labels per label)" in html
    assert "would get a label; labels people gave are never changed." in html
    # A poll that finds the run done stops polling and brings the results in.
    polled = adam.get(f"/p/{project.slug}/rules/runs/{run.pk}/", headers={"HX-Request": "true"})
    assert polled.status_code == 286 and 'id="rule-analysis"' in polled.content.decode()


def test_with_fewer_than_three_rules_the_page_says_the_label_model_needs_more(
    adam, project, users, corpus, django_capture_on_commit_callbacks
):
    make_rules(project, users["admin"], 2)
    run = apply_rules(adam, project, django_capture_on_commit_callbacks)
    html = adam.get(f"/p/{project.slug}/rules/runs/{run.pk}/").content.decode()
    assert "The label model needs at least three rules" in html


def test_the_run_page_polls_its_progress_until_the_run_is_finished(adam, project):
    run = RuleRun.objects.create(project=project, number=1, status=RuleRun.Status.RUNNING, total=200, processed=50)
    url = f"/p/{project.slug}/rules/runs/{run.pk}/"
    html = adam.get(url).content.decode()
    assert f'hx-get="{url}" hx-trigger="every 1s"' in html
    assert '<progress value="25.0" max="100"' in html and "50 of 200 examples" in html
    partial = adam.get(url, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and partial.content.decode().lstrip().startswith('<div id="run-body"')
    RuleRun.objects.filter(pk=run.pk).update(status=RuleRun.Status.FAILED, error="out of memory while fitting")
    finished = adam.get(url, headers={"HX-Request": "true"})
    assert finished.status_code == 286
    assert "out of memory while fitting" in finished.content.decode()
    assert "every 1s" not in finished.content.decode()


def test_applying_with_no_active_rule_says_so(adam, project):
    response = adam.post(f"/p/{project.slug}/rules/apply/", follow=True)
    assert "There is no active rule to apply" in response.content.decode()
    assert not RuleRun.objects.exists()


def test_accepting_weak_labels_counts_labels_and_the_list_shows_where_they_came_from(
    adam, project, users, corpus, django_capture_on_commit_callbacks
):
    make_rules(project, users["admin"])
    run = apply_rules(adam, project, django_capture_on_commit_callbacks)
    accept = f"/p/{project.slug}/rules/runs/{run.pk}/accept/"
    count = adam.get(accept, {"threshold": "0.9"}, headers={"HX-Request": "true"}).content.decode()
    before = dict(Example.objects.values_list("pk", "label__name"))
    n = int(count.split('aria-live="polite">')[1].split(" ")[0])
    assert n > 0 and "labels people gave are never changed" in count
    assert "must be" in adam.get(accept, {"threshold": "2"}, headers={"HX-Request": "true"}).content.decode().lower()

    refused = adam.post(accept, {"threshold": "2"}, follow=True).content.decode()
    assert "Threshold: Must be a number between 0 and 1." in refused
    assert not Example.objects.filter(weak_label__isnull=False).exists()

    response = adam.post(accept, {"threshold": "0.9"}, follow=True)
    assert f"{n} examples labeled from rule set v1." in response.content.decode()
    after = dict(Example.objects.values_list("pk", "label__name"))
    assert all(after[pk] == label for pk, label in before.items() if label is not None)
    newly = Example.objects.filter(weak_label__isnull=False).select_related("weak_label")
    assert newly.count() == n
    example = newly.first()

    html = adam.get(f"/p/{project.slug}/examples/").content.decode()
    assert html.count('class="muted provenance"') == n
    assert f"rules v1 · {example.weak_label.confidence:.2f}" in html
    assert "accepted from the rules' label model (rule set v1)" in html
    detail = adam.get(f"/p/{project.slug}/examples/{example.pk}/").content.decode()
    assert "rules v1 · " in detail


def test_the_browse_page_shows_weak_labels_without_a_query_per_row(
    client, project, users, corpus, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    client.login(username="adam", password=PASSWORD)
    make_rules(project, users["admin"])
    run = apply_rules(client, project, django_capture_on_commit_callbacks)
    client.post(f"/p/{project.slug}/rules/runs/{run.pk}/accept/", {"threshold": "0"})
    assert Example.objects.filter(weak_label__isnull=False).count() >= 3
    with django_assert_max_num_queries(10 + MENU_QUERIES):
        html = client.get(f"/p/{project.slug}/examples/").content.decode()
    assert "rules v1 · " in html


def test_the_rule_list_shows_the_latest_figures_against_the_previous_run_in_few_queries(
    adam, project, users, corpus, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    rules = make_rules(project, users["admin"], 10)
    apply_rules(adam, project, django_capture_on_commit_callbacks)
    rule_update(rule=rules[0], user=users["admin"], version=1, params={"keywords": "refund, invoice, charged"})
    apply_rules(adam, project, django_capture_on_commit_callbacks)
    with django_assert_max_num_queries(10 + MENU_QUERIES):
        html = adam.get(f"/p/{project.slug}/rules/").content.decode()
    assert html.count(f'href="/p/{project.slug}/rules/runs/') == 2
    assert "Figures from rule set v2." in html and "The previous accuracy is from rule set v1." in html
    assert "before: 100%" in html and "no labeled hit" in html
    assert "Apply rules" in html and f'href="/p/{project.slug}/rules/new/"' in html


def test_the_queue_order_is_chosen_on_the_rules_page(adam, project):
    response = adam.post(f"/p/{project.slug}/rules/queue-order/", {"queue_order": "uncertain"}, follow=True)
    project.refresh_from_db()
    assert project.queue_order == Project.QueueOrder.UNCERTAIN
    html = response.content.decode()
    assert "Annotation queue: least certain weak labels first." in html
    assert 'value="uncertain" checked' in html
    adam.post(f"/p/{project.slug}/rules/queue-order/", {"queue_order": "random"})
    project.refresh_from_db()
    assert project.queue_order == Project.QueueOrder.UNCERTAIN


def test_only_admins_see_the_rules_link(client, project, users):
    client.login(username="adam", password=PASSWORD)
    assert f'href="/p/{project.slug}/rules/"' in client.get(f"/p/{project.slug}/").content.decode()
    client.login(username="rhea", password=PASSWORD)
    assert f'href="/p/{project.slug}/rules/"' not in client.get(f"/p/{project.slug}/").content.decode()


@pytest.mark.parametrize(("who", "status"), [("annie", 403), ("rhea", 403), ("outsider", 404)])
def test_only_admins_may_open_or_use_any_rules_page(client, project, users, corpus, who, status):
    rule = make_rules(project, users["admin"], 1)[0]
    run = RuleRun.objects.create(project=project, number=1, status=RuleRun.Status.DONE)
    base = f"/p/{project.slug}/rules"
    pages = [
        ("get", f"{base}/", {}),
        ("get", f"{base}/new/", {}),
        ("post", f"{base}/new/", rule_form(name="sneaky")),
        ("post", f"{base}/preview/", rule_form()),
        ("post", f"{base}/apply/", {}),
        ("post", f"{base}/queue-order/", {"queue_order": "uncertain"}),
        ("get", f"{base}/{rule.pk}/", {}),
        ("post", f"{base}/{rule.pk}/", rule_form(name="sneaky", version="1")),
        ("post", f"{base}/{rule.pk}/delete/", {}),
        ("get", f"{base}/runs/{run.pk}/", {}),
        ("get", f"{base}/runs/{run.pk}/accept/", {"threshold": "0"}),
        ("post", f"{base}/runs/{run.pk}/accept/", {"threshold": "0"}),
    ]
    client.login(username=who, password=PASSWORD)
    for method, url, data in pages:
        assert getattr(client, method)(url, data).status_code == status, (method, url)
    project.refresh_from_db()
    assert list(LabelingRule.objects.values_list("name", flat=True)) == ["billing words"]
    assert RuleRun.objects.count() == 1 and project.queue_order == Project.QueueOrder.OLDEST
    assert not Example.objects.filter(weak_label__isnull=False).exists()
