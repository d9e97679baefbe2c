"""The review queue for examples that need review: one at a time with its whole conversation,
its label and where the label came from, its source and why it waits; approve, relabel,
edit or reject it (each one example_update with the version seen, so in its history), skip
it, filter by source and label source; the same through the API. And an annotator's edit of
an approved example sends it back here."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from curation.core.services import example_create, example_update
from curation.labeling import services as labeling
from curation.models import Example, ExampleRevision, ImportJob, RuleRun, WeakLabel
from tests.conftest import PASSWORD
from tests.curation.test_chat_editor_post import as_post, form_fields, replace

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALLING = [
    {"role": "user", "content": "京都の天気は？"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "京都"}'}}
        ],
    },
    {"role": "tool", "content": '{"sky": "晴れ"}', "tool_call_id": "call_0"},
    {"role": "assistant", "content": "晴れです。<b>&amp;</b>"},
]


def chat(text: str, answer: str = "Yes.") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]


def queue(project) -> str:
    return reverse("example_review_queue", args=[project.slug])


def decide(project, example) -> str:
    return reverse("example_review_decide", args=[project.slug, example.pk])


def signed_in(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def rhea(client, users):
    return signed_in(client, users["reviewer"])


@pytest.fixture
def imported(project, users) -> Example:
    job = ImportJob.objects.create(
        project=project, format="openai", filename="faq.jsonl", path="/nonexistent", status=ImportJob.Status.SUCCEEDED
    )
    example = example_create(
        project=project,
        user=users["admin"],
        messages=CALLING,
        tools=[WEATHER],
        label="billing",
        source=Example.Source.IMPORTED,
    )
    Example.objects.filter(pk=example.pk).update(import_job=job, source_line=7)
    example.refresh_from_db()
    return example


def rule_labeled(project, users, text: str = "Refund please") -> Example:
    example = example_create(project=project, user=users["admin"], messages=chat(text))
    run, _new = RuleRun.objects.get_or_create(
        project=project, number=3, defaults={"status": RuleRun.Status.DONE, "label_names": ["billing"]}
    )
    weak = WeakLabel.objects.create(
        run=run, example=example, label=project.labels.get(name="billing"), confidence=0.87, accepted_from="label_model"
    )
    Example.objects.filter(pk=example.pk).update(label=weak.label, weak_label=weak)
    example.refresh_from_db()
    return example


def card(html: str) -> str:
    start = html.index('id="example-review"')
    return html[start : html.index("</section>", start)]


# --- what the page shows -----------------------------------------------------------------


def test_the_queue_shows_one_example_with_its_conversation_label_source_and_why(rhea, project, imported):
    response = rhea.get(queue(project))
    assert response.status_code == 200
    html = card(response.content.decode())
    assert f'data-example="{imported.pk}"' in html
    # The whole conversation, the tool call and the tool result included, escaped.
    assert "京都の天気は？" in html and "get_weather" in html and "call_0" in html
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in html and "<b>&amp;</b>" not in html
    why = html[html.index('id="review-why"') :]
    assert f"Imported by import job {imported.import_job_id} (faq.jsonl, line 7)." in why
    assert "A person (adam)" in why and "Imported" in why
    # The label is chosen already (this is review, not annotation), with its number key.
    assert re.search(r'value="billing" data-key="1"\s+checked', html)
    assert "1 example needs review" in response.content.decode()


def test_a_label_from_the_rules_is_shown_with_the_rule_set_and_confidence(rhea, project, users):
    rule_labeled(project, users)
    html = card(rhea.get(queue(project)).content.decode())
    assert "Rules v3 (Label model), confidence 87%" in html and "Labeled by rules v3." in html
    assert 'data-source="rules"' in html


def test_an_example_without_a_label_says_so(rhea, project, users):
    example_create(project=project, user=users["annotator"], messages=chat("Hello?"))
    html = card(rhea.get(queue(project)).content.decode())
    assert 'data-source="none"' in html and "Written by annie; not reviewed yet." in html


def test_approved_rejected_and_draft_examples_do_not_wait(rhea, project, users):
    for status in ("approved", "rejected", "draft"):
        example_create(project=project, user=users["admin"], messages=chat(status), status=status)
    html = rhea.get(queue(project)).content.decode()
    assert 'id="review-empty"' in html and "No example needs review" in html


# --- decisions ---------------------------------------------------------------------------


def test_approving_records_who_with_the_version_seen(rhea, project, users, imported):
    response = rhea.post(decide(project, imported), {"action": "approve", "version": imported.version})
    assert response.status_code == 302
    imported.refresh_from_db()
    assert imported.status == "approved" and imported.version == 2 and imported.label.name == "billing"
    revision = imported.revisions.order_by("-id").first()
    assert revision.user == users["reviewer"] and revision.after["status"] == "approved"
    assert revision.before["messages"] == revision.after["messages"]  # nothing else changed
    page = rhea.get(response["Location"]).content.decode()
    assert f"Example {imported.pk} approved." in page and "No example needs review" in page


def test_relabel_then_approve(rhea, project, users, imported):
    rhea.post(decide(project, imported), {"action": "approve", "version": 1, "label": "shipping"})
    imported.refresh_from_db()
    assert imported.label.name == "shipping" and imported.status == "approved"
    revision = imported.revisions.order_by("-id").first()
    assert (revision.before["label"], revision.after["label"]) == ("billing", "shipping")


def test_approving_the_rules_label_as_it_is_keeps_where_it_came_from(rhea, project, users):
    example = rule_labeled(project, users)
    rhea.post(decide(project, example), {"action": "approve", "version": example.version, "label": "billing"})
    example.refresh_from_db()
    assert example.status == "approved" and example.weak_label_id is not None
    relabeled = rule_labeled(project, users, "Another refund")
    rhea.post(decide(project, relabeled), {"action": "approve", "version": relabeled.version, "label": "shipping"})
    relabeled.refresh_from_db()
    assert relabeled.label.name == "shipping" and relabeled.weak_label_id is None  # a person chose it now


def test_reject(rhea, project, users, imported):
    rhea.post(decide(project, imported), {"action": "reject", "version": 1})
    imported.refresh_from_db()
    assert imported.status == "rejected" and imported.label.name == "billing"
    assert imported.revisions.order_by("-id").first().after["status"] == "rejected"


def test_a_stale_version_changes_nothing_and_says_so(rhea, project, users, imported):
    example_update(example=imported, user=users["annotator"], version=1, messages=chat("Changed meanwhile"))
    response = rhea.post(decide(project, imported), {"action": "approve", "version": 1}, follow=True)
    imported.refresh_from_db()
    assert imported.status == "needs_review" and imported.version == 2
    assert f"Someone changed example {imported.pk} since you opened it" in response.content.decode()


def test_the_inline_editor_edits_then_approves(rhea, project, users, imported):
    html = rhea.get(queue(project)).content.decode()
    fields = form_fields(html, "decide-form")  # the editor's fields, as JavaScript enables them on e
    fields = replace(fields, "content", 3, "晴れ、二十度です。")
    response = rhea.post(decide(project, imported), {**as_post(fields), "action": "approve"})
    assert response.status_code == 302
    imported.refresh_from_db()
    assert imported.status == "approved" and imported.messages[3]["content"] == "晴れ、二十度です。"
    assert imported.messages[1]["tool_calls"] == CALLING[1]["tool_calls"]  # the call kept as it was
    assert imported.revisions.order_by("-id").first().user == users["reviewer"]


def test_an_edit_the_checks_refuse_names_the_field_and_keeps_the_text(rhea, project, users, imported):
    fields = form_fields(rhea.get(queue(project)).content.decode(), "decide-form")
    fields = replace(fields, "tool_call_id", 2, "call_9")
    fields = replace(fields, "content", 3, "My better answer")
    response = rhea.post(decide(project, imported), {**as_post(fields), "action": "approve"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="decide-error"' in html and "Turn 3" in html
    assert "My better answer" in html and 'id="edit-panel" class="review-panel" open' in html
    imported.refresh_from_db()
    assert imported.status == "needs_review" and imported.version == 1


def test_skip_previous_and_the_end_of_the_queue(rhea, project, users):
    first, second = (example_create(project=project, user=users["admin"], messages=chat(t)) for t in ("A?", "B?"))
    html = rhea.get(queue(project)).content.decode()
    assert f'data-example="{first.pk}"' in html and 'data-key="k"' not in html
    skipped = rhea.get(queue(project) + f"?after={first.pk}").content.decode()
    assert f'data-example="{second.pk}"' in skipped and 'data-key="k"' in skipped
    # Deciding keeps the position: the one skipped waits, the next after it comes.
    response = rhea.post(decide(project, second), {"action": "approve", "version": 1, "after": first.pk})
    end = rhea.get(response["Location"]).content.decode()
    assert "No more examples after the one you skipped" in end and "Back to the first waiting example" in end


def test_filters_by_source_and_label_source(rhea, project, users, imported):
    rules = rule_labeled(project, users)
    html = rhea.get(queue(project) + "?label_source=rules").content.decode()
    assert f'data-example="{rules.pk}"' in html and "1 of them matches the filters" in html
    html = rhea.get(queue(project) + "?source=imported").content.decode()
    assert f'data-example="{imported.pk}"' in html
    html = rhea.get(queue(project) + "?source=synthetic").content.decode()
    assert "No example that needs review matches the filters" in html
    response = rhea.get(queue(project) + "?source=nonsense")
    assert response.status_code == 200 and "source: Choose one of imported" in response.content.decode()


@pytest.mark.parametrize("role", ["annotator"])
def test_annotators_may_not_review(client, project, users, imported, role):
    signed_in(client, users[role])
    assert client.get(queue(project)).status_code == 403
    assert client.post(decide(project, imported), {"action": "approve", "version": 1}).status_code == 403
    api = APIClient()
    api.force_login(users[role])
    assert api.get(f"/api/projects/{project.slug}/review/examples/").status_code == 403
    imported.refresh_from_db()
    assert imported.status == "needs_review"


# --- an annotator's edit of an approved example ------------------------------------------


def test_an_annotators_edit_of_an_approved_test_example_sends_it_back_to_review(client, rhea, project, users):
    approved = example_create(
        project=project, user=users["reviewer"], messages=chat("Test me"), status="approved", split="test"
    )
    annie = signed_in(type(client)(), users["annotator"])
    response = annie.post(
        reverse("example_edit", args=[project.slug, approved.pk]),
        {
            "role": ["user", "assistant"],
            "content": ["Test me", "An annotator's answer"],
            "label": "",
            "split": "test",
            "status": "approved",
            "version": approved.version,
        },
    )
    assert response.status_code == 302
    approved.refresh_from_db()
    assert approved.status == "needs_review" and approved.split == "test"
    html = card(rhea.get(queue(project)).content.decode())
    assert "Edited after approval by annie (the conversation)." in html


def test_an_annotators_labeling_edit_of_an_approved_example_sends_it_back_too(rhea, project, users):
    approved = example_create(
        project=project, user=users["reviewer"], messages=chat("Refund?"), status="approved", label="billing"
    )
    labeling.annotation_submit(
        example=approved, user=users["annotator"], based_on_version=approved.version, label="shipping"
    )
    approved.refresh_from_db()
    assert approved.status == "needs_review" and approved.label.name == "shipping"
    html = card(rhea.get(queue(project)).content.decode())
    assert "Edited after approval by annie (the label (billing → shipping))." in html
    assert "A person (annie)" in html


# --- the API -----------------------------------------------------------------------------


@pytest.fixture
def api(users) -> APIClient:
    client = APIClient()
    client.force_login(users["reviewer"])
    return client


def endpoint(project) -> str:
    return f"/api/projects/{project.slug}/review/examples/"


def test_the_api_gives_the_next_example_and_takes_a_decision(api, project, users, imported):
    rules = rule_labeled(project, users)
    body = api.get(endpoint(project)).json()
    assert body["example"]["id"] == imported.pk and body["remaining"] == 2
    assert body["label_origin"]["source"] == "person" and body["label_origin"]["user"] == "adam"
    assert body["why"][0].startswith(f"Imported by import job {imported.import_job_id}")
    body = api.get(endpoint(project) + f"?after={imported.pk}").json()
    assert body["example"]["id"] == rules.pk
    assert body["label_origin"] | {"text": ""} == {
        "source": "rules",
        "text": "",
        "user": None,
        "rule_set": 3,
        "model": "label_model",
        "confidence": 0.87,
    }
    response = api.post(
        endpoint(project), {"example": rules.pk, "version": rules.version, "action": "approve", "label": "shipping"}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["example"]["status"] == "approved" and response.json()["example"]["label"] == "shipping"
    assert response.json()["remaining"] == 1
    edited = [*CALLING[:3], {"role": "assistant", "content": "Sunny."}]
    response = api.post(
        endpoint(project),
        {"example": imported.pk, "version": 1, "action": "approve", "messages": edited},
        format="json",
    )
    assert response.status_code == 200 and response.json()["example"]["messages"][3]["content"] == "Sunny."
    assert api.get(endpoint(project)).json() == {"example": None, "label_origin": None, "why": [], "remaining": 0}


def test_the_api_refuses_stale_and_decided_examples_and_bad_filters(api, project, users, imported):
    response = api.post(endpoint(project), {"example": imported.pk, "version": 5, "action": "reject"})
    assert response.status_code == 409 and response.json()["current"]["version"] == 1
    api.post(endpoint(project), {"example": imported.pk, "version": 1, "action": "reject"})
    response = api.post(endpoint(project), {"example": imported.pk, "version": 2, "action": "approve"})
    assert response.status_code == 409 and "no longer needs review" in response.json()["detail"]
    assert response.json()["current"]["status"] == "rejected"
    assert list(api.get(endpoint(project) + "?label_source=robots").json()) == ["label_source"]
    assert list(api.get(endpoint(project) + "?after=x").json()) == ["after"]
    response = api.post(endpoint(project), {"example": imported.pk, "version": 2, "action": "maybe"})
    assert response.status_code == 400 and list(response.json()) == ["action"]
    assert ExampleRevision.objects.filter(example=imported).count() == 2  # created, rejected


def test_the_page_reads_the_same_number_of_queries_however_many_wait(rhea, project, users, imported):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            assert rhea.get(queue(project) + f"?after={imported.pk - 1}").status_code == 200
        return len(context)

    few = queries()
    for i in range(30):
        example_create(project=project, user=users["admin"], messages=chat(f"Question {i}?"), label="billing")
    assert queries() == few
