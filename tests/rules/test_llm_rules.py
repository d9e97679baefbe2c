"""LLM rules ask the model an admin chose among the project's connections (here a chat-completions
server run by the test on the loopback), in batches, with the run's progress moving per batch;
the preview says how long the model took and what a whole run would take."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.test import Client
from rest_framework.test import APIClient

from curation.connections.services import connection_create
from curation.core.services import example_create
from curation.models import LabelingRule, Project, RuleRun, WeakLabel
from curation.rules import models_backed
from curation.rules import spec as S
from curation.rules.services import rule_clean, rule_create, rule_preview, rule_run_create, rule_run_execute
from curation.rules.spec import RuleError
from tests.conftest import PASSWORD
from tests.curation import test_openai_backend as fake
from tests.curation.test_openai_backend import completion
from tests.rules.conftest import chat

# The loopback chat-completions server of the backend's own tests, and no proxy from the machine.
server, sleeps, _no_proxy = fake.server, fake.sleeps, fake._no_proxy


def text_of(prompt: str) -> str:
    """The example's text in a zero-shot prompt (the label list mentions every label)."""
    return re.search(r"<<<\n(.*)\n>>>", prompt, re.S).group(1)


def by_keyword(number: int, body: dict) -> fake.Answer:
    text = text_of(body["messages"][-1]["content"]).lower()
    answer = "billing" if "refund" in text or "invoice" in text else "Shipping." if "parcel" in text else "none"
    return 200, {}, completion(answer)


@pytest.fixture
def gpu(server, project, users):
    server.respond = by_keyword
    return connection_create(
        project=project, user=users["admin"], name="gpu", kind="openai", base_url=server.url, model="tiny"
    )


class Counting:
    """A backend that answers by keyword and records the size of each generate call; `clock`
    advances a quarter of a second per text, so timings are exact."""

    name = "fake"

    def __init__(self, clock: list[float] | None = None, watch=None) -> None:
        self.sizes: list[int] = []
        self.clock = clock
        self.watch = watch

    def generate(self, conversations, *, max_new_tokens=64, temperature=0.0):
        if self.watch is not None:
            self.watch()
        self.sizes.append(len(conversations))
        if self.clock is not None:
            self.clock[0] += 0.25 * len(conversations)
        texts = [text_of(c[-1]["content"]).lower() for c in conversations]
        return ["billing" if "refund" in t else "none" for t in texts]


def llm_rule(project, users, label="billing", **params) -> LabelingRule:
    return rule_create(
        project=project,
        user=users["admin"],
        name=f"llm {label}",
        kind=S.ZERO_SHOT,
        params=params,
        label=label,
        target="user",
    )


def run_rules(project, users, **options) -> RuleRun:
    return rule_run_execute(run=rule_run_create(project=project, user=users["admin"]), **options)


def test_an_llm_rule_votes_the_labels_its_connections_server_answers(gpu, server, corpus, project, users):
    billing = llm_rule(project, users, backend={"connection": "gpu"})
    shipping = llm_rule(project, users, label="shipping", backend={"connection": gpu.pk})
    assert billing.params["backend"] == {"connection": gpu.pk}  # stored by id, chosen by name or id

    run = run_rules(project, users)

    assert run.status == RuleRun.Status.DONE, run.error
    votes = {w.example.first_user_text: w.votes for w in WeakLabel.objects.filter(run=run).select_related("example")}
    assert votes["Please refund the duplicate charge"] == {str(billing.pk): "billing"}
    assert votes["My parcel has not moved for a week"] == {str(shipping.pk): "shipping"}
    assert votes["Hello, nice shop"] == {}
    assert votes["Refund my parcel shipping cost please"] == {str(billing.pk): "billing"}
    # One question per example: both rules share the answers of the one model.
    assert len(server.seen) == 12
    assert {seen.body["model"] for seen in server.seen} == {"tiny"}


def test_the_runs_processed_count_moves_with_each_batch_of_a_chunk(corpus, project, users, monkeypatch):
    seen_processed: list[int] = []
    run_holder: list[RuleRun] = []

    def watch() -> None:
        if run_holder:
            seen_processed.append(RuleRun.objects.get(pk=run_holder[0].pk).processed)

    backend = Counting(watch=watch)
    monkeypatch.setattr("llm.local.default_backend", lambda: backend)
    monkeypatch.setattr(models_backed, "BATCH", 5)
    llm_rule(project, users)
    run = rule_run_create(project=project, user=users["admin"])
    run_holder.append(run)
    reported: list[int] = []

    run = rule_run_execute(run=run, progress=reported.append)

    assert run.status == RuleRun.Status.DONE, run.error
    assert backend.sizes == [5, 5, 2]
    # While the one chunk of 12 was classified, the page's count moved after each batch.
    assert seen_processed == [0, 5, 10]
    assert reported == [5, 10, 12]


def test_progress_counts_rows_not_questions_when_two_llm_rules_read_a_chunk(corpus, project, users, monkeypatch):
    backend = Counting()
    monkeypatch.setattr("llm.local.default_backend", lambda: backend)
    monkeypatch.setattr(models_backed, "BATCH", 6)
    llm_rule(project, users)
    llm_rule(project, users, label="shipping", instruction="Parcels are shipping.")
    reported: list[int] = []

    run = run_rules(project, users, progress=reported.append)

    assert backend.sizes == [6, 6, 6, 6]
    assert reported == [3, 6, 9, 12] and run.processed == 12


@pytest.mark.parametrize(
    "backend",
    [{"connection": "elsewhere"}, {"connection": 999_999}, {"base_url": "http://169.254.169.254/v1"}, "gpu"],
)
def test_a_rule_naming_a_connection_it_may_not_use_is_refused_on_the_backend_field(project, users, backend):
    other = Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)
    connection_create(project=other, user=users["superuser"], name="elsewhere", kind="embedded")
    with pytest.raises(RuleError) as refused:
        llm_rule(project, users, backend=backend)
    assert refused.value.field == "backend"
    assert not LabelingRule.objects.exists()


def test_the_api_refuses_another_projects_connection_with_the_connections_words(project, users):
    other = Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)
    theirs = connection_create(project=other, user=users["superuser"], name="theirs", kind="embedded")
    client = APIClient()
    client.login(username="adam", password=PASSWORD)
    body = {"name": "llm", "kind": "llm", "label": "billing", "params": {"backend": {"connection": theirs.pk}}}

    response = client.post(f"/api/projects/{project.slug}/rules/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {"backend": ["Choose a connection of this project."]}


def test_the_preview_says_how_many_examples_it_asked_and_what_a_run_would_take(corpus, project, users, monkeypatch):
    for i in range(28):  # 40 examples: the preview asks about the first 12
        example_create(project=project, user=users["admin"], messages=chat(f"Question {i} about a refund"))
    clock = [100.0]
    monkeypatch.setattr(models_backed, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr("llm.local.default_backend", lambda: Counting(clock))
    data = rule_clean(project=project, name="llm", kind=S.ZERO_SHOT, params={}, label="billing", target="user")

    preview = rule_preview(project=project, rule=data)

    assert (preview.scanned, preview.total, preview.asked) == (12, 40, 12)
    assert preview.cost() == {
        "model": "fake",
        "asked": 12,
        "seconds": 3.0,
        "seconds_per_example": 0.25,
        "estimate_seconds": 10.0,
    }
    client = APIClient()
    client.login(username="adam", password=PASSWORD)
    body = {"kind": "llm", "label": "billing", "params": {"instruction": "Money is billing."}}
    answer = client.post(f"/api/projects/{project.slug}/rules/preview/", body, format="json").json()
    assert answer["model"] == preview.cost() and answer["scanned"] == 12
    page = Client()
    page.login(username="adam", password=PASSWORD)
    form = {"kind": "llm", "label": "billing", "target": "user", "llm_instruction": "", "llm_backend": ""}
    html = page.post(f"/p/{project.slug}/rules/preview/", form).content.decode()
    assert "fake was asked about 12 examples in 3.0 s (0.25 s per example)." in html
    assert "Applying the rules to the project's 40 examples would take about 10 s for this rule." in html


def test_a_keyword_rules_preview_reports_no_model(corpus, project):
    data = rule_clean(
        project=project, name="k", kind=S.KEYWORDS, params={"keywords": "refund"}, label="billing", target="user"
    )
    assert rule_preview(project=project, rule=data).cost() is None


def test_the_preview_through_a_connection_names_the_server_model(gpu, server, corpus, project, users):
    client = APIClient()
    client.login(username="adam", password=PASSWORD)
    body = {"kind": "llm", "label": "shipping", "params": {"backend": {"connection": gpu.pk}}}

    answer = client.post(f"/api/projects/{project.slug}/rules/preview/", body, format="json").json()

    assert answer["model"]["model"].startswith("openai:tiny@127.0.0.1") and answer["model"]["asked"] == 12
    assert answer["hits"] == 3  # the parcel texts that do not ask for a refund
    assert len(server.seen) == 12


def test_a_rule_saved_before_models_could_be_chosen_still_asks_the_embedded_model(corpus, project, users, monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError("a rule without a backend must not look for a connection")

    monkeypatch.setattr("curation.connections.backends.backend_from_spec", no_connection)
    backend = Counting()
    monkeypatch.setattr("llm.local.default_backend", lambda: backend)
    old = LabelingRule.objects.create(
        project=project,
        name="old llm",
        kind=S.ZERO_SHOT,
        params={"instruction": ""},
        label=project.labels.get(name="billing"),
        target="user",
    )

    run = run_rules(project, users)

    assert run.status == RuleRun.Status.DONE, run.error
    assert backend.sizes == [12]
    voted = WeakLabel.objects.filter(run=run, votes__has_key=str(old.pk)).count()
    assert voted == 3  # the three texts that mention a refund


def test_the_editor_offers_the_projects_connections_and_the_pages_name_the_model(gpu, server, corpus, project, users):
    page = Client()
    page.login(username="adam", password=PASSWORD)
    form = {
        "name": "ask gpu",
        "kind": "llm",
        "label": "billing",
        "target": "user",
        "active": "on",
        "llm_instruction": "",
        "llm_backend": f"connection:{gpu.pk}",
    }
    editor = page.get(f"/p/{project.slug}/rules/new/").content.decode()
    assert f'<option value="connection:{gpu.pk}">gpu (' in editor

    response = page.post(f"/p/{project.slug}/rules/new/", form)

    rule = LabelingRule.objects.get(name="ask gpu")
    assert response.status_code == 302 and rule.params["backend"] == {"connection": gpu.pk}
    edit = page.get(f"/p/{project.slug}/rules/{rule.pk}/").content.decode()
    assert f'<option value="connection:{gpu.pk}" selected>' in edit
    listing = page.get(f"/p/{project.slug}/rules/").content.decode()
    assert '<small class="muted" title="The model this rule asks">gpu</small>' in listing
    run = run_rules(project, users)
    detail = page.get(f"/p/{project.slug}/rules/runs/{run.pk}/").content.decode()
    assert '<small class="muted" title="The model this rule asked">gpu</small>' in detail


def test_the_editor_refuses_another_projects_connection(project, users):
    other = Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)
    theirs = connection_create(project=other, user=users["superuser"], name="theirs", kind="embedded")
    page = Client()
    page.login(username="adam", password=PASSWORD)
    form = {"name": "x", "kind": "llm", "label": "billing", "target": "user", "llm_backend": f"connection:{theirs.pk}"}

    response = page.post(f"/p/{project.slug}/rules/new/", form)

    assert response.status_code == 400
    assert f"Select a valid choice. connection:{theirs.pk} is not one of the available choices." in (
        response.content.decode()
    )
    assert not LabelingRule.objects.exists()


def test_a_rule_whose_connection_was_deleted_says_so_instead_of_switching_models(gpu, corpus, project, users):
    rule = llm_rule(project, users, backend={"connection": gpu.pk})
    gone = gpu.pk
    gpu.delete()
    page = Client()
    page.login(username="adam", password=PASSWORD)

    edit = page.get(f"/p/{project.slug}/rules/{rule.pk}/").content.decode()
    assert f'<option value="connection:{gone}" selected>A connection that was deleted' in edit
    form = {
        "name": rule.name,
        "kind": "llm",
        "label": "billing",
        "target": "user",
        "active": "on",
        "version": rule.version,
        "llm_backend": f"connection:{gone}",
    }
    response = page.post(f"/p/{project.slug}/rules/{rule.pk}/", form)

    assert response.status_code == 400
    rule.refresh_from_db()
    assert rule.params["backend"] == {"connection": gone} and rule.version == 1
