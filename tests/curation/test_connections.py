"""Connections: only admins define where a model runs and which of the operator's secrets it
sends; reviewers choose one by name. Each attack from issue 15 is tried here for real (pages,
API, services, a loopback chat-completions server) and must be refused."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
from django.apps import apps
from django.test import Client

from curation.connections.backends import BackendChoiceError, backend_spec_clean
from curation.connections.services import (
    ConnectionInvalid,
    connection_backend,
    connection_create,
    connection_delete,
    embedded_connection,
    model_folder_resolve,
    secret_names,
)
from curation.generation.synthetic import synthetic_execute
from curation.generation.tasks import generation_job_resume, synthetic_start
from curation.generation.templates import template_save
from curation.models import Connection, GenerationJob, Project
from tests.conftest import PASSWORD
from tests.curation import test_openai_backend as fake
from tests.curation.test_openai_backend import completion

# The loopback chat-completions server of the backend's own tests, and no proxy from the machine.
server, sleeps, _no_proxy = fake.server, fake.sleeps, fake._no_proxy

SECRET = "SHIKOMI_SECRET_GPU_KEY"
SECRET_VALUE = "s3cr3t-value-never-shown"


@pytest.fixture(autouse=True)
def operator(settings, tmp_path, monkeypatch) -> Path:
    """One secret in the operator's list, the test's own models directory with one model."""
    settings.SHIKOMI_MODELS_DIR = (tmp_path / "models").resolve()
    (settings.SHIKOMI_MODELS_DIR / "qwen" / "0.5b").mkdir(parents=True)
    monkeypatch.setenv(SECRET, SECRET_VALUE)
    monkeypatch.setenv("SHIKOMI_DATABASE_PASSWORD", "x")  # ours, but without the secrets' prefix
    return settings.SHIKOMI_MODELS_DIR


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def template(project, users):
    return template_save(project=project, user=users["reviewer"], name="support", text="Write a question.", few_shot=0)


@pytest.fixture
def other(db) -> Project:
    return Project.objects.create(name="Other", slug="other", kind=Project.Kind.CHAT)


# --- the operator's secrets ----------------------------------------------------------------


def test_the_secrets_are_exactly_the_environment_variables_with_the_prefix() -> None:
    names = secret_names()
    assert SECRET in names
    assert "SECRET_KEY" not in names and "SHIKOMI_DATABASE_PASSWORD" not in names and "PATH" not in names
    assert all(name.startswith("SHIKOMI_SECRET_") for name in names)


@pytest.mark.parametrize("who", ["admin", "superuser"])
def test_an_admin_cannot_name_a_secret_outside_the_list(project, users, who, monkeypatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "the-django-secret")
    with pytest.raises(ConnectionInvalid) as caught:
        connection_create(
            project=project,
            user=users[who],
            name="exfiltrate",
            kind="openai",
            base_url="http://127.0.0.1:9/v1",
            model="m",
            secret="SECRET_KEY",
        )
    assert caught.value.field == "secret"
    assert "'SECRET_KEY' is not one of the operator's secrets" in caught.value.message
    assert not Connection.objects.filter(name="exfiltrate").exists()


def test_the_connection_page_offers_only_the_operators_secrets_and_refuses_others(project, users) -> None:
    client = signed_in(users["admin"])
    page = client.get(f"/p/{project.slug}/connections/new/").content.decode()
    assert f'<option value="{SECRET}">' in page
    assert "SECRET_KEY" not in page and "DATABASE_URL" not in page
    response = client.post(
        f"/p/{project.slug}/connections/new/",
        {"name": "gpu", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "secret": "SECRET_KEY"},
    )
    assert response.status_code == 400
    assert "Select a valid choice. SECRET_KEY is not one of the available choices." in response.content.decode()
    assert not Connection.objects.filter(name="gpu").exists()


def test_the_api_refuses_an_admins_secret_outside_the_list(project, users) -> None:
    response = signed_in(users["admin"]).post(
        f"/api/projects/{project.slug}/connections/",
        {"name": "gpu", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "secret": "DATABASE_URL"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "'DATABASE_URL' is not one of the operator's secrets" in response.json()["secret"][0]


def test_an_admin_saves_a_connection_and_reviewers_see_its_name_but_not_where_it_points(project, users) -> None:
    admin = signed_in(users["admin"])
    response = admin.post(
        f"/p/{project.slug}/connections/new/",
        {"name": "gpu", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "qwen", "secret": SECRET},
    )
    assert response.status_code == 302
    saved = Connection.objects.get(project=project, name="gpu")
    assert (saved.secret, saved.base_url, saved.created_by) == (SECRET, "http://127.0.0.1:9/v1", users["admin"])
    seen = signed_in(users["reviewer"]).get(f"/api/projects/{project.slug}/connections/").json()
    mine = next(c for c in seen if c["name"] == "gpu")
    assert mine == {"id": saved.pk, "name": "gpu", "kind": "openai", "model": "qwen", "shared": False}
    page = signed_in(users["reviewer"]).get(f"/p/{project.slug}/connections/").content.decode()
    assert "gpu" in page and SECRET not in page and "127.0.0.1:9" not in page and SECRET_VALUE not in page
    assert SECRET_VALUE not in admin.get(f"/p/{project.slug}/connections/").content.decode()


def test_a_reviewer_cannot_add_a_connection(project, users) -> None:
    client = signed_in(users["reviewer"])
    body = {"name": "mine", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    assert client.post(f"/p/{project.slug}/connections/new/", body).status_code == 403
    api = client.post(f"/api/projects/{project.slug}/connections/", body, content_type="application/json")
    assert api.status_code == 403
    assert not Connection.objects.filter(name="mine").exists()


def test_a_connection_to_the_metadata_service_is_refused_at_save_time(project, users) -> None:
    with pytest.raises(ConnectionInvalid) as caught:
        connection_create(
            project=project,
            user=users["admin"],
            name="meta",
            kind="openai",
            base_url="http://169.254.169.254/v1",
            model="m",
        )
    assert caught.value.field == "base_url"


# --- model folders -------------------------------------------------------------------------


def test_a_folder_inside_the_models_dir_is_kept_relative(project, users, operator) -> None:
    saved = connection_create(project=project, user=users["admin"], name="qwen", kind="folder", folder="qwen/0.5b")
    assert saved.folder == "qwen/0.5b"
    assert connection_backend(saved).model == str(operator / "qwen" / "0.5b")


def test_model_paths_outside_the_models_dir_are_refused_like_a_missing_folder(project, users, operator, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (operator / "escape").symlink_to(outside, target_is_directory=True)
    messages = {}
    for folder in ["../elsewhere", "qwen/../../elsewhere", str(outside), "/etc", "escape", "no-such-model", "/"]:
        with pytest.raises(ConnectionInvalid) as caught:
            connection_create(project=project, user=users["admin"], name="m", kind="folder", folder=folder)
        assert caught.value.field == "folder"
        messages[folder] = caught.value.message.replace(repr(folder), "<folder>")
    # Existing or not, inside or out: the same words, so the answer reveals nothing.
    assert len(set(messages.values())) == 1, messages
    with pytest.raises(ValueError) as missing:
        model_folder_resolve("no-such-model")
    assert str(missing.value).replace("'no-such-model'", "<folder>") == messages["/etc"]


# --- jobs ----------------------------------------------------------------------------------


def job_body(**extra) -> dict:
    return {"count": 1, "temperature": 0.7} | extra


@pytest.mark.parametrize(
    "body",
    [
        {
            "backend": {
                "kind": "openai",
                "base_url": "http://attacker.example/v1",
                "model": "m",
                "api_key_env": "SECRET_KEY",
            }
        },
        {"backend": {"kind": "local", "model": "/etc"}},
        {"base_url": "http://attacker.example/v1", "api_key_env": "DATABASE_URL"},
        {"connection": "1", "api_key_env": SECRET},
    ],
)
def test_a_reviewers_api_job_that_sends_an_address_or_key_name_is_refused(project, users, template, body) -> None:
    response = signed_in(users["reviewer"]).post(
        f"/api/projects/{project.slug}/generation-jobs/", job_body(**body), content_type="application/json"
    )
    assert response.status_code == 400
    assert "ask an admin to add one" in response.json()["connection"][0]
    assert not GenerationJob.objects.exists()


def test_a_reviewers_page_job_that_names_a_secret_is_refused(project, users, template) -> None:
    response = signed_in(users["reviewer"]).post(
        f"/p/{project.slug}/generate/new/",
        {
            "template": template.pk,
            "count": 1,
            "candidates": 1,
            "temperature": 0.7,
            "max_new_tokens": 64,
            "seed": 0,
            "backend": "SECRET_KEY",
            "backend_base_url": "http://attacker.example/v1",
            "backend_api_key_env": "SECRET_KEY",
        },
    )
    assert response.status_code == 400
    assert "Select a valid choice. SECRET_KEY is not one of the available choices." in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_another_projects_connection_and_run_are_refused(project, other, users, template) -> None:
    theirs = connection_create(project=other, user=users["superuser"], name="theirs", kind="embedded")
    for ref in (theirs.pk, "theirs"):
        with pytest.raises(BackendChoiceError) as caught:
            backend_spec_clean({"connection": ref}, project)
        assert caught.value.message == "Choose a connection of this project."
    response = signed_in(users["reviewer"]).post(
        f"/api/projects/{project.slug}/generation-jobs/",
        job_body(connection=str(theirs.pk)),
        content_type="application/json",
    )
    assert response.status_code == 400 and response.json() == {"connection": ["Choose a connection of this project."]}
    from tests.training.conftest import make_run

    run = make_run(other, users["superuser"], status="done", output_dir=str(other.pk))
    response = signed_in(users["reviewer"]).post(
        f"/api/projects/{project.slug}/generation-jobs/", job_body(run=run.pk), content_type="application/json"
    )
    assert response.status_code == 400 and response.json() == {"run": ["Choose a training run of this project."]}


def test_every_project_may_use_the_operators_embedded_connection(project, other, users, template) -> None:
    shared = embedded_connection()
    assert backend_spec_clean({}, project) == {"connection": shared.pk}
    assert backend_spec_clean({"connection": "Embedded model"}, other) == {"connection": shared.pk}
    response = signed_in(users["reviewer"]).post(
        f"/api/projects/{project.slug}/generation-jobs/",
        job_body(connection="Embedded model"),
        content_type="application/json",
    )
    assert response.status_code == 202, response.json()
    assert response.json()["config"]["backend"] == {"connection": shared.pk}


def test_a_job_through_an_openai_connection_sends_the_operators_secret_as_bearer(
    server, sleeps, project, users, template, django_capture_on_commit_callbacks
) -> None:
    server.respond = lambda number, body: (200, {}, completion(f"Reply {number}"))
    gpu = connection_create(
        project=project,
        user=users["admin"],
        name="gpu",
        kind="openai",
        base_url=server.url,
        model="tiny",
        secret=SECRET,
    )
    job = synthetic_start(
        project=project, user=users["reviewer"], template=template, count=1, backend={"connection": "gpu"}
    )
    assert job.config["backend"] == {"connection": gpu.pk}
    job = synthetic_execute(job=job)
    assert job.status == GenerationJob.Status.DONE, job.error
    assert server.seen and all(seen.headers["Authorization"] == f"Bearer {SECRET_VALUE}" for seen in server.seen)
    assert SECRET_VALUE not in str(job.config) and SECRET_VALUE not in job.backend


def test_a_secret_no_longer_set_fails_the_job_naming_it_without_a_value(
    server, project, users, template, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    gpu = connection_create(
        project=project,
        user=users["admin"],
        name="gpu",
        kind="openai",
        base_url=server.url,
        model="tiny",
        secret=SECRET,
    )
    job = synthetic_start(
        project=project, user=users["reviewer"], template=template, count=1, backend={"connection": gpu.pk}
    )
    monkeypatch.delenv(SECRET)
    job = synthetic_execute(job=job)
    assert job.status == GenerationJob.Status.FAILED
    assert "Connection gpu" in job.error and SECRET in job.error and SECRET_VALUE not in job.error
    assert not server.seen


def test_a_deleted_connection_keeps_its_jobs_readable_and_refuses_to_resume_them(
    project, users, template, django_capture_on_commit_callbacks
) -> None:
    folder = connection_create(project=project, user=users["admin"], name="qwen", kind="folder", folder="qwen/0.5b")
    job = synthetic_start(
        project=project, user=users["reviewer"], template=template, count=1, backend={"connection": folder.pk}
    )
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.FAILED)
    connection_delete(connection=folder)
    page = signed_in(users["reviewer"]).get(f"/p/{project.slug}/generate/{job.pk}/")
    assert page.status_code == 200 and "folder:qwen/0.5b" in page.content.decode()
    job.refresh_from_db()
    job = synthetic_execute(job=generation_job_resume(job=job))
    assert job.status == GenerationJob.Status.FAILED
    assert (
        job.error == "The connection this job used was deleted; start a new job with one of the project's connections."
    )


# --- the data migration --------------------------------------------------------------------


def test_the_migration_turns_old_specs_into_connections_of_their_project(project, users, template, operator) -> None:
    migration = importlib.import_module("curation.migrations.0009_connections")
    Connection.objects.all().delete()
    specs = {
        "embedded": {"kind": "local", "model": ""},
        "folder": {"kind": "local", "model": str(operator / "qwen" / "0.5b")},
        "outside": {"kind": "local", "model": "/etc"},
        "allowed key": {"kind": "openai", "base_url": "http://gpu:8000/v1", "model": "llama", "api_key_env": SECRET},
        "any variable": {
            "kind": "openai",
            "base_url": "http://gpu:8000/v1",
            "model": "llama",
            "api_key_env": "SECRET_KEY",
        },
        "again": {"kind": "openai", "base_url": "http://gpu:8000/v1", "model": "llama", "api_key_env": SECRET},
        "tuned": {"kind": "tuned", "run": 7},
    }
    jobs = {
        name: GenerationJob.objects.create(
            project=project, kind="synthetic", template=template, backend="old", config={"count": 1, "backend": spec}
        )
        for name, spec in specs.items()
    }
    migration.specs_to_connections(apps, None)
    after = {name: GenerationJob.objects.get(pk=job.pk).config["backend"] for name, job in jobs.items()}
    made = {key: Connection.objects.get(pk=spec["connection"]) for key, spec in after.items() if "connection" in spec}
    assert made["embedded"].project is None and made["embedded"].kind == "embedded"
    assert (made["folder"].project, made["folder"].kind, made["folder"].folder) == (project, "folder", "qwen/0.5b")
    assert made["outside"].kind == "embedded" and made["outside"].name == "Needs fixing: model /etc"
    assert (made["allowed key"].kind, made["allowed key"].secret) == ("openai", SECRET)
    assert made["any variable"].secret == "" and made["any variable"].base_url == "http://gpu:8000/v1"
    assert made["again"] == made["allowed key"]  # one connection per distinct spec
    assert after["tuned"] == {"kind": "tuned", "run": 7}
    assert os.environ[SECRET] == SECRET_VALUE  # the migration reads names, never values


def test_the_operator_adds_a_shared_connection_in_django_admin_only_with_a_listed_secret(users):
    admin_site = signed_in(users["superuser"])
    form = {"project": "", "name": "Team GPU", "kind": "openai", "base_url": "http://127.0.0.1:9/v1"}
    form |= {"model": "qwen", "timeout": "30", "folder": ""}
    refused = admin_site.post("/admin/curation/connection/add/", form | {"secret": "SHIKOMI_DATABASE_PASSWORD"})
    assert refused.status_code == 200 and b"Select a valid choice" in refused.content
    refused = admin_site.post("/admin/curation/connection/add/", form | {"secret": "", "folder": "../../etc"})
    assert refused.status_code == 302  # an OpenAI connection ignores the folder field
    shared = Connection.objects.get(name="Team GPU")
    assert shared.project is None and shared.secret == "" and shared.folder == ""
    response = admin_site.post(
        "/admin/curation/connection/add/", {"project": "", "name": "Mount", "kind": "folder", "folder": "../../etc"}
    )
    assert response.status_code == 200 and b"is not a model folder in the models directory" in response.content
    response = admin_site.post(f"/admin/curation/connection/{shared.pk}/change/", form | {"secret": SECRET})
    assert response.status_code == 302
    shared.refresh_from_db()
    assert shared.secret == SECRET and shared.created_by == users["superuser"]
