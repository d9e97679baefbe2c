"""The synthetic generation pages: templates and their versions, the job form, the job page
with its progress, and the statistics per job and per template version."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from curation.connections.services import connection_create, embedded_connection
from curation.generation import stats as draft_stats
from curation.generation.tasks import synthetic_start
from curation.generation.templates import DEFAULT_NAME, template_save
from curation.models import GenerationJob, Project, PromptTemplate
from curation.review import services as review
from curation.workspace.navigation import MENU_QUERIES

PAGES = ["generate_home", "generate_job_new", "generate_template_new", "generate_template_edit", "generate_job"]


def url(project: Project, name: str, *args: Any) -> str:
    return reverse(name, args=[project.slug, *args])


def job_form(template: PromptTemplate, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "template": str(template.pk),
        "count": "3",
        "candidates": "2",
        "topics": "refunds\n\ndelivery\n",
        "task_types": ["code", "question answering"],
        "temperature": "0.8",
        "max_new_tokens": "128",
        "critique": "on",
        "seed": "7",
        "backend": f"connection:{embedded_connection().pk}",
    }
    data.update(changes)
    return data


@pytest.fixture
def job(run_job) -> GenerationJob:
    return run_job(count=2)


@pytest.fixture
def queued(project, users, template, django_capture_on_commit_callbacks) -> GenerationJob:
    """A synthetic job that was started but never ran (its task was not executed)."""
    with django_capture_on_commit_callbacks():
        return synthetic_start(project=project, user=users["reviewer"], template=template, count=2)


def page_url(project: Project, name: str, template: PromptTemplate, job: GenerationJob) -> str:
    if name == "generate_template_edit":
        return url(project, name, template.pk)
    if name in ("generate_job", "generate_job_action"):
        return url(project, name, job.pk)
    return url(project, name)


# --- who may use the pages ---------------------------------------------------------------


@pytest.mark.parametrize("name", [*PAGES, "generate_job_action"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_outsiders_get_404_and_annotators_403_whatever_the_method(client, project, users, template, job, name, method):
    address = page_url(project, name, template, job)
    client.force_login(users["outsider"])
    assert getattr(client, method)(address).status_code == 404
    client.force_login(users["annotator"])
    assert getattr(client, method)(address).status_code == 403
    assert PromptTemplate.objects.filter(project=project).count() == 1
    assert GenerationJob.objects.count() == 1


@pytest.mark.parametrize("role", ["reviewer", "admin"])
@pytest.mark.parametrize("name", PAGES)
def test_reviewers_and_admins_open_every_page(client, project, users, template, job, name, role):
    client.force_login(users[role])
    assert client.get(page_url(project, name, template, job)).status_code == 200


def test_reviewers_may_act_on_a_job_but_not_get_the_action_address(client, project, users, job):
    client.force_login(users["reviewer"])
    address = url(project, "generate_job_action", job.pk)
    assert client.get(address).status_code == 405
    response = client.post(address, {"action": "cancel"})
    assert response.status_code == 302 and response["Location"] == url(project, "generate_job", job.pk)


def test_templates_and_jobs_of_another_project_are_not_found(client, project, users, template, job):
    other = Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)
    theirs = template_save(project=other, user=None, name="theirs", text="About {topic}")
    their_job = GenerationJob.objects.create(project=other, kind=GenerationJob.Kind.SYNTHETIC, template=theirs)
    client.force_login(users["admin"])
    assert client.get(url(project, "generate_template_edit", theirs.pk)).status_code == 404
    response = client.post(url(project, "generate_template_edit", theirs.pk), {"name": "x", "text": "y", "few_shot": 1})
    assert response.status_code == 404
    assert client.get(url(project, "generate_job", their_job.pk)).status_code == 404
    assert client.post(url(project, "generate_job_action", their_job.pk), {"action": "cancel"}).status_code == 404
    their_job.refresh_from_db()
    assert not their_job.cancel_requested


# --- templates ---------------------------------------------------------------------------


def test_a_new_template_is_version_1_and_an_edit_makes_version_2_leaving_1_as_it_was(client, project, users):
    client.force_login(users["reviewer"])
    response = client.post(
        url(project, "generate_template_new"), {"name": "faq", "text": "Ask about {topic}.", "few_shot": "2"}
    )
    first = PromptTemplate.objects.get(project=project, name="faq")
    assert first.version == 1 and first.created_by == users["reviewer"]
    assert response.status_code == 302 and response["Location"] == url(project, "generate_template_edit", first.pk)

    response = client.post(
        url(project, "generate_template_edit", first.pk),
        {"name": "faq", "text": "Ask briefly about {topic}.", "few_shot": "2"},
    )
    second = PromptTemplate.objects.get(project=project, name="faq", version=2)
    assert response["Location"] == url(project, "generate_template_edit", second.pk)
    first.refresh_from_db()
    assert first.text == "Ask about {topic}." and second.text == "Ask briefly about {topic}."

    page = client.get(response["Location"]).content.decode()
    history = page.split('id="template-history"', 1)[1]
    assert "v1" in history and "v2" in history
    assert "Ask about {topic}." in history and "Ask briefly about {topic}." in history


def test_the_edit_page_explains_every_placeholder(client, project, users, template):
    client.force_login(users["reviewer"])
    page = client.get(url(project, "generate_template_edit", template.pk)).content.decode()
    for placeholder in ("{topic}", "{task_type}", "{examples}", "{label}", "{system_prompt}", "{guidelines}"):
        assert f"<code>{placeholder}</code>" in page
    assert "the project&#x27;s annotation guidelines" in page


def test_an_unknown_placeholder_is_shown_on_the_text_field_with_its_line(client, project, users):
    client.force_login(users["reviewer"])
    response = client.post(
        url(project, "generate_template_new"),
        {"name": "faq", "text": "Ask about {topic}.\nIn the {topik} way.", "few_shot": "2"},
    )
    assert response.status_code == 400
    assert "Line 2: {topik} is not a placeholder" in response.context["form"].errors["text"][0]
    page = response.content.decode()
    error = page.split('id="error-text"', 1)[1].split("</p>", 1)[0]
    assert "Line 2: {topik} is not a placeholder" in error
    assert "In the {topik} way." in page  # what was typed is kept
    assert not PromptTemplate.objects.filter(project=project).exists()


def test_saving_an_unchanged_template_says_nothing_changed(client, project, users, template):
    client.force_login(users["reviewer"])
    response = client.post(
        url(project, "generate_template_edit", template.pk),
        {"name": template.name, "text": template.text, "few_shot": str(template.few_shot)},
        follow=True,
    )
    assert "Nothing changed; still version 1." in response.content.decode()
    assert PromptTemplate.objects.filter(project=project).count() == 1


def test_an_older_version_says_which_is_newest(client, project, users, template):
    newer = template_save(project=project, user=users["admin"], name=template.name, text=template.text + "\nBe brief.")
    client.force_login(users["reviewer"])
    page = client.get(url(project, "generate_template_edit", template.pk)).content.decode()
    assert "the newest is version 2" in page
    assert url(project, "generate_template_edit", newer.pk) in page


# --- the job form ------------------------------------------------------------------------


def test_the_job_form_starts_a_job_with_the_settings_and_queues_one_task(
    client, project, users, template, django_capture_on_commit_callbacks
):
    client.force_login(users["reviewer"])
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url(project, "generate_job_new"), job_form(template))
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == url(project, "generate_job", job.pk)
    assert len(callbacks) == 1
    assert job.kind == GenerationJob.Kind.SYNTHETIC and job.status == GenerationJob.Status.QUEUED
    assert job.template == template and job.created_by == users["reviewer"] and job.total == 3
    assert job.config == {
        "count": 3,
        "candidates": 2,
        "topics": ["refunds", "delivery"],
        "task_types": ["code", "question answering"],
        "temperature": 0.8,
        "max_new_tokens": 128,
        "critique": True,
        "seed": 7,
        "backend": {"connection": embedded_connection().pk},
        "tools": [],  # the project's approved examples have none
    }


def test_the_job_form_stores_the_chosen_connection_and_offers_no_address_or_key_field(
    client, project, users, template, django_capture_on_commit_callbacks
):
    gpu = connection_create(
        project=project, user=users["admin"], name="gpu", kind="openai", base_url="http://localhost:8000/v1", model="q"
    )
    client.force_login(users["reviewer"])
    page = client.get(url(project, "generate_job_new")).content.decode()
    assert f'<option value="connection:{gpu.pk}">gpu (OpenAI-compatible server)</option>' in page
    assert 'name="backend_base_url"' not in page and 'name="backend_api_key_env"' not in page
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url(project, "generate_job_new"), job_form(template, backend=f"connection:{gpu.pk}"))
    assert response.status_code == 302
    assert len(callbacks) == 1
    assert GenerationJob.objects.get().config["backend"] == {"connection": gpu.pk}


@pytest.mark.parametrize(
    "changes,field,words",
    [
        ({"count": "0"}, "count", "greater than or equal to 1"),
        ({"candidates": "3", "temperature": "0"}, "temperature", "need a temperature above 0"),
        ({"backend": "connection:99999"}, "backend", "Select a valid choice"),
    ],
)
def test_the_job_form_shows_each_error_on_its_field(
    client, project, users, template, django_capture_on_commit_callbacks, changes, field, words
):
    client.force_login(users["reviewer"])
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url(project, "generate_job_new"), job_form(template, **changes))
    assert response.status_code == 400
    assert words in " ".join(response.context["form"].errors[field])
    assert f'id="error-{field}"' in response.content.decode()
    assert not GenerationJob.objects.exists() and not callbacks


def test_the_job_form_is_filled_from_the_last_synthetic_job(
    client, project, users, template, django_capture_on_commit_callbacks
):
    gpu = connection_create(
        project=project, user=users["admin"], name="gpu", kind="openai", base_url="http://localhost:8000/v1", model="q"
    )
    with django_capture_on_commit_callbacks():
        synthetic_start(
            project=project,
            user=users["admin"],
            template=template,
            count=12,
            candidates=3,
            topics=["refunds", "late parcels"],
            task_types=["code", "summarisation"],
            temperature=1.1,
            max_new_tokens=300,
            critique=True,
            seed=5,
            backend={"connection": gpu.pk},
        )
    newer = template_save(project=project, user=users["admin"], name=template.name, text=template.text + "\nBe brief.")
    client.force_login(users["reviewer"])
    response = client.get(url(project, "generate_job_new"))
    initial = response.context["form"].initial
    assert initial["template"] == str(newer.pk)  # the newest version of the template it used
    assert {k: initial[k] for k in ("count", "candidates", "temperature", "max_new_tokens", "critique", "seed")} == {
        "count": 12,
        "candidates": 3,
        "temperature": 1.1,
        "max_new_tokens": 300,
        "critique": True,
        "seed": 5,
    }
    assert initial["topics"] == "refunds\nlate parcels"
    assert initial["task_types"] == ["code", "summarisation"]
    page = response.content.decode()
    assert "refunds\nlate parcels</textarea>" in page
    assert initial["backend"] == f"connection:{gpu.pk}"
    assert f'<option value="connection:{gpu.pk}" selected>' in page
    assert 'value="code" id="id_task_types_2" checked>' in page


def test_a_project_without_templates_gets_the_default_one_on_the_form(client, project, users):
    client.force_login(users["reviewer"])
    response = client.get(url(project, "generate_job_new"))
    made = PromptTemplate.objects.get(project=project)
    assert made.name == DEFAULT_NAME
    assert response.context["form"].initial["template"] == str(made.pk)
    assert f'<option value="{made.pk}" selected>{DEFAULT_NAME} (v1)</option>' in response.content.decode()


# --- the job page and its actions --------------------------------------------------------


def test_the_job_page_shows_progress_settings_and_drafts(client, project, users, run_job):
    job = run_job(count=2, task_types=["code"], seed=3)
    client.force_login(users["reviewer"])
    page = client.get(url(project, "generate_job", job.pk)).content.decode()
    assert "2 of 2 prompts, 2 drafts made" in page
    assert "refunds; delivery" in page and "Code" in page
    assert f"{url(project, 'review_queue')}?job={job.pk}" in page
    drafts = page.split('id="job-drafts"', 1)[1]
    assert "Question 1 about refunds?" in drafts and "Answer 3 to: Question 1 about refunds?" in drafts
    assert "hx-trigger" not in page  # finished: nothing to poll


def test_the_job_page_shows_flags_and_per_draft_errors(client, project, users, job):
    draft = job.draft_reviews.first()
    draft.flags = [{"code": "truncated"}]
    draft.save(update_fields=["flags"])
    GenerationJob.objects.filter(pk=job.pk).update(
        status=GenerationJob.Status.FAILED,
        error="The server said no.",
        errors=[{"key": "p7", "error": "the model wrote no request"}],
    )
    client.force_login(users["reviewer"])
    page = client.get(url(project, "generate_job", job.pk)).content.decode()
    assert "Cut off: the model reached the token limit before it finished." in page
    assert '<p class="error" role="alert">The server said no.</p>' in page
    assert "p7: the model wrote no request" in page
    assert 'value="resume"' in page and 'value="cancel"' not in page


def test_model_text_on_the_job_page_is_escaped(client, project, users, backend, drafts):
    backend.replies["about refunds?"] = "<script>alert(1)</script>"
    drafts(count=1, topics=["refunds"])
    job = GenerationJob.objects.get()
    client.force_login(users["reviewer"])
    page = client.get(url(project, "generate_job", job.pk)).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page


def test_an_augmentation_job_opens_on_its_own_page(client, project, users):
    job = GenerationJob.objects.create(project=project, kind=GenerationJob.Kind.AUGMENT)
    client.force_login(users["reviewer"])
    response = client.get(url(project, "generate_job", job.pk))
    assert response.status_code == 302 and response["Location"] == url(project, "quality_augment_job", job.pk)


def test_the_polled_part_polls_while_running_and_stops_once_finished(client, project, users, queued):
    client.force_login(users["reviewer"])
    address = url(project, "generate_job", queued.pk)
    GenerationJob.objects.filter(pk=queued.pk).update(status=GenerationJob.Status.RUNNING, processed=1)
    response = client.get(address, HTTP_HX_REQUEST="true")
    part = response.content.decode()
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in part
    assert part.lstrip().startswith('<div id="job-body"') and "<html" not in part
    assert "1 of 2 prompts" in part and 'value="cancel"' in part
    GenerationJob.objects.filter(pk=queued.pk).update(status=GenerationJob.Status.DONE, processed=2)
    response = client.get(address, HTTP_HX_REQUEST="true")
    assert response.status_code == 286
    assert "hx-trigger" not in response.content.decode()


def test_cancel_and_resume_through_the_action(client, project, users, queued, django_capture_on_commit_callbacks):
    client.force_login(users["reviewer"])
    address = url(project, "generate_job_action", queued.pk)
    response = client.post(address, {"action": "cancel"}, follow=True)
    queued.refresh_from_db()
    assert queued.status == GenerationJob.Status.CANCELLED and queued.cancel_requested
    assert "The job stops after its current batch" in response.content.decode()

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(address, {"action": "resume"})
    assert response.status_code == 302 and response["Location"] == url(project, "generate_job", queued.pk)
    queued.refresh_from_db()
    assert queued.status == GenerationJob.Status.QUEUED and not queued.cancel_requested
    assert len(callbacks) == 1

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(address, {"action": "resume"}, follow=True)
    assert "Only a stopped job can be started again." in response.content.decode()
    assert not callbacks


# --- statistics --------------------------------------------------------------------------


def test_the_home_page_shows_review_statistics_per_job_and_per_template_version(
    client, project, users, drafts, template
):
    first, second, third = drafts(count=3)
    reviewer = users["reviewer"]
    review.draft_approve(draft=first, user=reviewer, version=first.example.version)
    edited = [dict(m) for m in second.example.messages]
    edited[second.target]["content"] += " Anything else I can help with?"
    review.draft_approve(draft=second, user=reviewer, version=second.example.version, messages=edited)
    review.draft_reject(draft=third, user=reviewer, version=third.example.version, reasons=["off_task", "tone"])
    stats = draft_stats.job_stats(project)[first.job_id]
    mean_edit = f"{round(stats.mean_edit * 100)}%"

    client.force_login(reviewer)
    page = client.get(url(project, "generate_home")).content.decode()
    jobs, by_template = page.split('id="jobs"', 1)[1].split('id="template-stats"', 1)
    for section in (jobs, by_template):
        assert "67%" in section  # 2 of the 3 decided drafts accepted
        assert mean_edit in section and mean_edit != "0%"
        assert "Does not do what was asked (1)" in section and "Wrong tone or voice (1)" in section
    assert f"{template.name} v{template.version}" in by_template
    assert url(project, "review_queue") in page and url(project, "preference_list") in page
    job_page = client.get(url(project, "generate_job", first.job_id)).content.decode()
    job_stats = job_page.split('id="job-stats"', 1)[1].split("</section>", 1)[0]
    assert "67%" in job_stats and mean_edit in job_stats and "Does not do what was asked (1)" in job_stats


def test_a_first_visit_explains_what_to_do(client, project, users):
    client.force_login(users["reviewer"])
    page = client.get(url(project, "generate_home")).content.decode()
    assert "No generation jobs yet." in page
    assert url(project, "generate_job_new") in page and url(project, "generate_template_new") in page


def test_the_home_page_reads_a_fixed_number_of_queries(client, project, users, run_job, django_assert_max_num_queries):
    for _ in range(4):
        run_job(count=2)
    GenerationJob.objects.create(project=project, kind=GenerationJob.Kind.AUGMENT)
    client.force_login(users["reviewer"])
    with django_assert_max_num_queries(12 + MENU_QUERIES):
        assert client.get(url(project, "generate_home")).status_code == 200


def test_the_job_page_reads_a_fixed_number_of_queries(client, project, users, run_job, django_assert_max_num_queries):
    job = run_job(count=6, candidates=2)
    client.force_login(users["reviewer"])
    with django_assert_max_num_queries(12 + MENU_QUERIES):
        assert client.get(url(project, "generate_job", job.pk)).status_code == 200
