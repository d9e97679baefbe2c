"""Drafts grounded in the project's documents: `{document}` in a template is filled with a
passage of a document (split by paragraphs and sentences, drawn by seed), each draft keeps its
passage and document, and reviewers see the passage, escaped, beside the draft."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from curation.connections.services import embedded_connection
from curation.generation import ConfigError
from curation.generation.synthetic import synthetic_execute
from curation.generation.tasks import synthetic_start
from curation.generation.templates import template_check, template_save
from curation.models import Draft, GenerationJob, Project, PromptTemplate, Source, SourceDocument
from tests.conftest import wait_for
from text import passages

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(1)>"
GROUNDED = "Write a customer question that this passage answers.\nTopic: {topic}\n\nPassage:\n{document}"

ENGLISH = "\n\n".join(
    " ".join(f"Paragraph {p}, sentence {s}: refunds take 3.5 days, e.g. by card." for s in range(14)) for p in range(3)
)
JAPANESE = "返品は三十日以内に受け付けます。送料はお客様のご負担です！ご不明な点はございますか？" * 25


def squashed(text: str) -> str:
    return re.sub(r"\s+", "", text)


def document(project: Project, text: str, *, source: Source | None = None, **fields) -> SourceDocument:
    source = source or Source.objects.get_or_create(project=project, name="Handbook", kind=Source.Kind.DOCUMENTS)[0]
    return SourceDocument.objects.create(
        project=project,
        source=source,
        text=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        characters=len(text),
        **fields,
    )


@pytest.fixture
def grounded(project: Project, users) -> PromptTemplate:
    return template_save(project=project, user=users["reviewer"], name="grounded", text=GROUNDED, few_shot=0)


def start(project, users, template, **settings) -> GenerationJob:
    options = {"count": 2, "candidates": 1, "topics": ["refunds"], "temperature": 0.7, "seed": 3}
    options.update(settings)
    return synthetic_start(project=project, user=users["reviewer"], template=template, **options)


# --- passages (plain Python) -----------------------------------------------------------------


def test_english_text_is_split_by_paragraphs_then_whole_sentences():
    found = passages.split(ENGLISH, 1_200)
    assert len(found) >= 3
    assert all(len(p) <= 1_200 for p in found)
    # A passage never ends inside a sentence, and "3.5" or "e.g." do not end one.
    assert all(p.endswith("by card.") for p in found)
    assert squashed("".join(found)) == squashed(ENGLISH)


def test_short_paragraphs_share_a_passage_and_blank_text_has_none():
    assert passages.split("First paragraph.\n\nSecond paragraph.") == ["First paragraph.\n\nSecond paragraph."]
    assert passages.split(" \n\n \t") == []


def test_japanese_text_is_split_after_its_sentence_ends():
    found = passages.split(JAPANESE, 300)
    assert len(found) > 3
    assert all(len(p) <= 300 for p in found)
    assert all(p[-1] in "。！？" for p in found)
    assert squashed("".join(found)) == squashed(JAPANESE)
    assert passages.sentences("「はい。」と言った。Then he left. OK") == [
        "「はい。」",
        "と言った。",
        "Then he left. ",
        "OK",
    ]


def test_a_sentence_longer_than_the_size_is_cut_at_spaces():
    long_sentence = " ".join(["word"] * 200) + "."
    found = passages.split(long_sentence, 250)
    assert all(len(p) <= 250 for p in found)
    assert all(re.fullmatch(r"(word ?)+\.?", p) for p in found)


def test_passages_have_stable_ids():
    found = passages.passages_of(42, ENGLISH)
    assert [p.id for p in found] == [f"42:{i}" for i in range(len(found))]
    assert passages.passages_of(42, ENGLISH) == found


def test_the_draw_is_seeded_and_repeats_no_passage_until_all_are_drawn():
    documents = [(1, ENGLISH), (2, "A short note."), (3, JAPANESE)]
    every = {p.id for key, text in documents for p in passages.passages_of(key, text)}

    first = passages.draw(documents, len(every) + 4, seed=7)
    assert passages.draw(documents, len(every) + 4, seed=7) == first
    assert passages.draw(documents, len(every) + 4, seed=8) != first
    # Every passage once (so a document is drawn in proportion to its passages), then again.
    assert {p.id for p in first[: len(every)]} == every
    assert len({p.id for p in first[: len(every)]}) == len(every)
    assert {p.id for p in first[len(every) :]} <= every
    assert passages.draw([], 3, seed=1) == [] and passages.draw([(1, "  ")], 3, seed=1) == []


# --- templates and starting a job ------------------------------------------------------------


def test_document_is_a_placeholder_and_a_typo_of_it_is_refused():
    assert template_check(GROUNDED) == GROUNDED
    with pytest.raises(ConfigError) as refused:
        template_check("Ask about this.\n{documents}")
    assert refused.value.field == "text"
    assert "Line 2: {documents} is not a placeholder" in refused.value.message
    assert "{document}" in refused.value.message


def test_a_grounded_job_is_refused_in_a_project_without_documents(
    project, users, grounded, django_capture_on_commit_callbacks
):
    with pytest.raises(ConfigError) as refused:
        start(project, users, grounded)
    assert refused.value.field == "template"
    assert "{document}" in refused.value.message and "no documents" in refused.value.message
    assert not GenerationJob.objects.exists()

    # The page and the API say it on the template field too.
    client = APIClient()
    client.force_login(users["reviewer"])
    response = client.post(
        f"/api/projects/{project.slug}/generation-jobs/", {"template": grounded.pk, "count": 2}, format="json"
    )
    assert response.status_code == 400 and "{document}" in response.json()["template"][0]
    form = {
        "template": str(grounded.pk),
        "count": "2",
        "candidates": "1",
        "temperature": "0.7",
        "max_new_tokens": "64",
        "seed": "0",
        "backend": f"connection:{embedded_connection().pk}",
    }
    response = client.post(reverse("generate_job_new", args=[project.slug]), form)
    assert response.status_code == 400
    assert "{document}" in response.context["form"].errors["template"][0]
    assert not GenerationJob.objects.exists()


def test_chosen_sources_must_be_the_projects_and_hold_documents(
    project, users, grounded, django_capture_on_commit_callbacks
):
    document(project, ENGLISH)
    empty = Source.objects.create(project=project, name="Empty", kind=Source.Kind.DOCUMENTS)
    other = Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)
    foreign = Source.objects.create(project=other, name="Theirs", kind=Source.Kind.DOCUMENTS)

    with pytest.raises(ConfigError) as refused:
        start(project, users, grounded, sources=[empty.pk])
    assert refused.value.field == "template" and "chosen sources hold no documents" in refused.value.message
    with pytest.raises(ConfigError) as refused:
        start(project, users, grounded, sources=[foreign.pk])
    assert refused.value.field == "sources" and str(foreign.pk) in refused.value.message
    assert not GenerationJob.objects.exists()


# --- running a job (scripted backend) --------------------------------------------------------


def test_each_prompt_is_grounded_in_a_drawn_passage_that_its_drafts_keep(
    project, users, grounded, backend, django_capture_on_commit_callbacks
):
    handbook = document(project, ENGLISH, title="Refund policy", location="https://shop.example/refunds")
    quoting = document(project, "Write {topic} in braces: it is kept as written.", title="Braces")
    job = start(project, users, grounded, count=4, candidates=2)
    job = synthetic_execute(job=job, backend=backend)
    assert job.status == GenerationJob.Status.DONE, (job.error, job.errors)

    drafts = list(Draft.objects.filter(job=job).select_related("document").order_by("id"))
    assert len(drafts) == 8
    every = {(d.pk, p) for d, text in ((handbook, ENGLISH), (quoting, quoting.text)) for p in passages.split(text)}
    for draft in drafts:
        assert (draft.document_id, draft.passage) in every
        assert draft.passage in draft.request  # the filled-in template holds it, braces and all
    # Candidates of one prompt share its passage; the prompts draw different passages.
    by_group = {}
    for draft in drafts:
        by_group.setdefault(draft.group, set()).add((draft.document_id, draft.passage))
    assert all(len(found) == 1 for found in by_group.values())
    assert len({next(iter(found)) for found in by_group.values()}) == 4
    assert "Write {topic} in braces" in next(d.request for d in drafts if d.document_id == quoting.pk)

    # The same seed draws the same passages again.
    again = synthetic_execute(job=start(project, users, grounded, count=4, candidates=2), backend=backend)
    assert [d.passage for d in Draft.objects.filter(job=again).order_by("id")] == [d.passage for d in drafts]


def test_a_job_draws_only_from_the_chosen_sources(
    project, users, grounded, backend, django_capture_on_commit_callbacks
):
    document(project, "Only the handbook says this.", title="Handbook page")
    faq = Source.objects.create(project=project, name="FAQ", kind=Source.Kind.DOCUMENTS)
    chosen = document(project, "Only the FAQ says this.", source=faq, title="FAQ page")
    job = synthetic_execute(job=start(project, users, grounded, count=3, sources=[faq.pk]), backend=backend)
    assert job.config["sources"] == [faq.pk]
    assert {(d.document_id, d.passage) for d in Draft.objects.filter(job=job)} == {(chosen.pk, chosen.text)}


def test_a_job_whose_documents_are_gone_fails_saying_why(
    project, users, grounded, backend, django_capture_on_commit_callbacks
):
    document(project, ENGLISH)
    job = start(project, users, grounded)
    SourceDocument.objects.all().delete()
    job = synthetic_execute(job=job, backend=backend)
    assert job.status == GenerationJob.Status.FAILED
    assert "{document}" in job.error
    assert not Draft.objects.filter(job=job).exists()


def test_the_answer_is_written_from_the_passage_and_the_example_keeps_it(
    project, users, grounded, backend, django_capture_on_commit_callbacks
):
    """By default the answer step sees the passage in its system message (after the project's
    own), so the answer rests on it, and the example keeps it there: the tuned model learns to
    answer from a passage it is given. Turned off, only the request sees the passage."""
    project.system_prompt = "You are the shop's support assistant."
    project.save(update_fields=["system_prompt"])
    handbook = document(project, "Refunds take 3.5 days by card.", title="Refund policy")
    job = synthetic_execute(job=start(project, users, grounded, count=1), backend=backend)
    assert job.config["passage_context"] is True
    draft = Draft.objects.select_related("example").get(job=job)
    system = draft.example.messages[0]
    assert system["role"] == "system"
    assert system["content"] == (
        "You are the shop's support assistant.\n\nReference passage:\nRefunds take 3.5 days by card."
    )
    answered = backend.calls[1][0]  # the answer step's conversation
    assert answered[0] == system and draft.document_id == handbook.pk

    job = synthetic_execute(job=start(project, users, grounded, count=1, passage_context=False), backend=backend)
    draft = Draft.objects.select_related("example").get(job=job)
    assert draft.example.messages[0] == {"role": "system", "content": "You are the shop's support assistant."}
    assert draft.passage == handbook.text  # still recorded for the reviewer


def test_a_plain_template_grounds_nothing(project, users, drafts):
    made = drafts(count=2)
    assert all(d.document_id is None and d.passage == "" for d in made)


# --- review page and API ---------------------------------------------------------------------


def _grounded_drafts(project, users, grounded, backend, text: str, **fields) -> list[Draft]:
    document(project, text, **fields)
    job = synthetic_execute(job=start(project, users, grounded, count=1), backend=backend)
    return list(Draft.objects.filter(job=job).order_by("id"))


def test_the_review_page_shows_the_passage_escaped_beside_the_draft(
    client, project, users, grounded, backend, django_capture_on_commit_callbacks
):
    text = f"Refunds are paid back to the card. {HOSTILE}"
    _grounded_drafts(
        project, users, grounded, backend, text, title=f"Policy {HOSTILE}", location="https://shop.example/refunds"
    )
    client.force_login(users["reviewer"])
    page = client.get(f"/p/{project.slug}/drafts/").content.decode()

    aside = page.split('id="review-passage"', 1)[1].split("</aside>", 1)[0]
    assert "Refunds are paid back to the card." in aside
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in aside and "Policy &lt;script&gt;" in aside
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert 'href="https://shop.example/refunds"' in aside
    assert page.index('id="review-card"') < page.index('id="review-passage"')  # beside the draft, in one grid


def test_a_location_that_is_not_a_web_address_is_not_a_link(
    client, project, users, grounded, backend, django_capture_on_commit_callbacks
):
    _grounded_drafts(project, users, grounded, backend, "Pay within a week.", location="javascript:alert(1)")
    client.force_login(users["reviewer"])
    aside = client.get(f"/p/{project.slug}/drafts/").content.decode().split('id="review-passage"', 1)[1]
    assert "javascript:alert(1)" in aside.split("</aside>", 1)[0]
    assert 'href="javascript' not in aside


def test_a_long_passage_is_shown_in_part_with_the_whole_on_request(
    client, project, users, grounded, backend, django_capture_on_commit_callbacks
):
    draft = _grounded_drafts(project, users, grounded, backend, ENGLISH)[0]
    assert len(draft.passage) > 600
    client.force_login(users["reviewer"])
    page = client.get(f"/p/{project.slug}/drafts/").content.decode()
    whole = page.split('id="passage-whole"', 1)[1].split("</details>", 1)[0]
    assert draft.passage in whole
    assert f"({len(draft.passage)} characters)" in whole
    start_shown = page.split('id="passage-start"', 1)[1].split("</pre>", 1)[0]
    assert draft.passage[:100] in start_shown and draft.passage[-60:] not in start_shown


def test_the_api_gives_each_draft_its_passage_and_document(
    project, users, grounded, backend, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    made = _grounded_drafts(
        project, users, grounded, backend, "Refunds take a week.", title="Refunds", location="refunds.md"
    )
    plain = template_save(project=project, user=users["reviewer"], name="plain", text="Ask about {topic}.")
    synthetic_execute(job=start(project, users, plain, count=2), backend=backend)
    client = APIClient()
    client.force_login(users["reviewer"])

    body = client.get(f"/api/projects/{project.slug}/drafts/{made[0].example_id}/").json()
    assert body["passage"] == "Refunds take a week."
    assert body["document"] == {"id": made[0].document_id, "title": "Refunds", "location": "refunds.md"}
    with django_assert_max_num_queries(8):
        listed = client.get(f"/api/projects/{project.slug}/drafts/").json()["results"]
    assert [d["document"] is None for d in listed] == [False, True, True]
    assert [d["passage"] for d in listed][1:] == ["", ""]


def test_the_job_form_offers_the_sources_that_hold_documents(
    client, project, users, grounded, django_capture_on_commit_callbacks
):
    faq = Source.objects.create(project=project, name="FAQ pages", kind=Source.Kind.DOCUMENTS)
    Source.objects.create(project=project, name="Empty bucket", kind=Source.Kind.DOCUMENTS)
    document(project, "Refunds take a week.", source=faq)
    client.force_login(users["reviewer"])
    page = client.get(reverse("generate_job_new", args=[project.slug])).content.decode()
    assert "FAQ pages" in page and "Empty bucket" not in page

    form = {
        "template": str(grounded.pk),
        "count": "2",
        "candidates": "1",
        "temperature": "0.7",
        "max_new_tokens": "64",
        "seed": "0",
        "sources": [str(faq.pk)],
        "backend": f"connection:{embedded_connection().pk}",
    }
    response = client.post(reverse("generate_job_new", args=[project.slug]), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert GenerationJob.objects.get().config["sources"] == [faq.pk]


# --- the embedded model through a real consumer ----------------------------------------------


def test_the_embedded_model_writes_drafts_grounded_in_a_document(huey_consumer, project, users, client):
    first = "Refunds are paid back to the card used for the order within five working days. " * 8
    second = "A parcel that has not arrived after ten days is sent again at no cost. " * 8
    handbook = document(
        project,
        f"{first}{HOSTILE}\n\n{second}{HOSTILE}",
        title="Customer handbook",
        location="handbook.md",
    )
    template = template_save(
        project=project,
        user=users["reviewer"],
        name="grounded",
        text="Read this passage from our handbook:\n\n{document}\n\nWrite one question a customer could ask "
        "about it. Write only the question.",
        few_shot=0,
    )
    job = synthetic_start(
        project=project, user=users["reviewer"], template=template, count=2, temperature=0.0, max_new_tokens=24
    )

    def finished() -> GenerationJob | None:
        current = GenerationJob.objects.get(pk=job.pk)
        return current if current.finished else None

    job = wait_for(finished, timeout=600, interval=0.5)  # generous: a busy shared CPU is slow
    assert job.status == GenerationJob.Status.DONE, (job.error, job.errors)
    drafts = list(Draft.objects.filter(job=job).select_related("example").order_by("id"))
    assert len(drafts) == 2, job.errors
    expected = passages.split(handbook.text)
    assert len(expected) == 2
    # Two prompts, two different passages of the document, each in what the model was asked.
    assert sorted(d.passage for d in drafts) == sorted(expected)
    for draft in drafts:
        assert draft.document_id == handbook.pk
        assert draft.passage in draft.request
        assert draft.example.messages[-1]["role"] == "assistant"

    client.force_login(users["reviewer"])
    page = client.get(f"/p/{project.slug}/drafts/?job={job.pk}").content.decode()
    aside = page.split('id="review-passage"', 1)[1].split("</aside>", 1)[0]
    assert "Customer handbook" in aside and "handbook.md" in aside
    shown = next(d for d in drafts if d.group == "p0").passage
    assert shown[:80] in aside
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in aside
