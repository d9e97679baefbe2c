"""Pushing an export with its data card to the Hugging Face Hub, against a stand-in Hub on
loopback that answers what huggingface_hub asks for a small dataset push (create the
repository, validate the card's YAML, preupload, commit with base64 files). Never the real Hub."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import api_token_create
from curation.models import Example, ProjectChange
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SECRET = "SHIKOMI_SECRET_HUB_TEST"
TOKEN = "hf_test_token_0123"


class StandIn:
    """The requests received, the files committed, and what to refuse."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []  # method, path, authorization
        self.created: list[dict] = []
        self.committed: dict[str, bytes] = {}
        self.refuse_commit: tuple[int, str] | None = None
        self.endpoint = ""


def _handler(hub: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding") == "chunked":
                body = b""
                while size := int(self.rfile.readline().strip(), 16):
                    body += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()
                return body
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, data: dict) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            body = self._body()
            hub.requests.append((self.command, self.path, self.headers.get("authorization", "")))
            if self.path == "/api/repos/create":
                hub.created.append(json.loads(body))
                return self._answer(200, {"url": f"{hub.endpoint}/datasets/kumo/support", "name": "kumo/support"})
            if self.path == "/api/validate-yaml":
                return self._answer(200, {})
            if self.path.startswith("/api/datasets/kumo/support/preupload/"):
                files = json.loads(body)["files"]
                return self._answer(
                    200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
                )
            if self.path.startswith("/api/datasets/kumo/support/commit/"):
                if hub.refuse_commit:
                    status, message = hub.refuse_commit
                    return self._answer(status, {"error": message})
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        hub.committed[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                oid = "a" * 40
                return self._answer(
                    200,
                    {
                        "commitUrl": f"{hub.endpoint}/datasets/kumo/support/commit/{oid}",
                        "commitOid": oid,
                        "pullRequestUrl": None,
                    },
                )
            return self._answer(404, {"error": f"not in the stand-in: {self.path}"})

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture
def stand_in(settings, monkeypatch) -> Iterator[StandIn]:
    hub = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hub.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    settings.SHIKOMI_HUB_ENDPOINT = hub.endpoint
    monkeypatch.setenv(SECRET, TOKEN)
    yield hub
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def approved(project, example) -> Example:
    Example.objects.filter(pk=example.pk).update(status=Example.Status.APPROVED)
    return example


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + api_token_create(user=user, name="t")[1])
    return client


def push(client: APIClient, project, **body):
    data = {"repo_id": "kumo/support", "secret": SECRET, "format": "openai"} | body
    return client.post(f"/api/projects/{project.slug}/export/hub/", data, format="json")


def test_an_admin_pushes_the_export_and_its_card_from_the_page(project, users, approved, stand_in):
    client = Client()
    client.login(username=users["admin"].username, password=PASSWORD)
    page = client.get(f"/p/{project.slug}/export/")
    assert b'id="export-hub"' in page.content and SECRET.encode() in page.content
    form = {"format": "openai", "status": "approved", "statuses_shown": "1", "card": "on"}
    response = client.post(
        f"/p/{project.slug}/export/hub/", form | {"repo_id": "kumo/support", "secret": SECRET, "private": "on"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert set(stand_in.committed) == {"support-openai.jsonl", "README.md"}
    record = json.loads(stand_in.committed["support-openai.jsonl"])
    assert record["messages"] == approved.messages
    card = stand_in.committed["README.md"].decode()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["configs"][0]["data_files"] == [{"split": "train", "path": "support-openai.jsonl"}]
    assert stand_in.created == [{"name": "support", "organization": "kumo", "visibility": "private", "type": "dataset"}]
    assert {auth for _m, _p, auth in stand_in.requests} == {f"Bearer {TOKEN}"}
    change = ProjectChange.objects.get(project=project, action="hub_push")
    assert change.detail["after"]["repository"] == "kumo/support" and change.user == users["admin"]
    followed = client.get(response["Location"])
    assert "Pushed support-openai.jsonl, README.md to kumo/support" in followed.content.decode()


def test_the_api_pushes_one_file_per_split_publicly(project, users, approved, stand_in):
    response = push(api_for(users["admin"]), project, per_split=True, private=False, status="any")
    assert response.status_code == 200, response.json()
    assert response.json()["files"] == ["support-unassigned-openai.jsonl", "README.md"]
    assert response.json()["commit_url"].endswith("/datasets/kumo/support/commit/" + "a" * 40)
    assert stand_in.created[0]["visibility"] == "public"
    assert set(stand_in.committed) == {"support-unassigned-openai.jsonl", "README.md"}


def test_an_unknown_secret_is_refused_before_anything_is_sent(project, users, approved, stand_in):
    response = push(api_for(users["admin"]), project, secret="DATABASE_URL")
    assert response.status_code == 400
    assert "not one of the operator's secrets" in response.json()["secret"][0]
    client = Client()
    client.login(username=users["admin"].username, password=PASSWORD)
    page = client.post(
        f"/p/{project.slug}/export/hub/", {"format": "openai", "repo_id": "kumo/support", "secret": "SECRET_KEY"}
    )
    assert page.status_code == 200 and b"Select a valid choice" in page.content
    assert stand_in.requests == []


@pytest.mark.parametrize("repo_id", ["kumo", "kumo/support/x", "../etc", "kumo/sup port", "kumo/a--b", "a/b.git", ""])
def test_a_bad_repository_id_is_refused(project, users, approved, stand_in, repo_id):
    response = push(api_for(users["admin"]), project, repo_id=repo_id)
    assert response.status_code == 400
    assert "repo_id" in response.json()
    assert stand_in.requests == []


def test_only_admins_may_push(project, users, approved, stand_in):
    for role in ("reviewer", "annotator"):
        assert push(api_for(users[role]), project).status_code == 403
        client = Client()
        client.login(username=users[role].username, password=PASSWORD)
        page = client.post(f"/p/{project.slug}/export/hub/", {"format": "openai", "repo_id": "kumo/support"})
        assert page.status_code in (403, 404)
    reviewer = Client()
    reviewer.login(username=users["reviewer"].username, password=PASSWORD)
    assert b'id="export-hub"' not in reviewer.get(f"/p/{project.slug}/export/").content
    assert stand_in.requests == []


def test_an_endpoint_the_outbound_guard_refuses_is_never_reached(project, users, approved, stand_in, settings):
    settings.SHIKOMI_OUTBOUND_ALLOW = []  # loopback is not allowed any more
    response = push(api_for(users["admin"]), project)
    assert response.status_code == 400
    message = response.json()["detail"] if "detail" in response.json() else json.dumps(response.json())
    assert stand_in.endpoint in message and "SHIKOMI_HUB_ENDPOINT" in message
    assert stand_in.requests == []


def test_the_hubs_refusal_comes_back_with_its_status_and_message(project, users, approved, stand_in):
    stand_in.refuse_commit = (403, "You don't have the rights to push to kumo/support")
    response = push(api_for(users["admin"]), project)
    assert response.status_code == 502
    text = json.dumps(response.json())
    assert "HTTP 403" in text and "You don't have the rights to push to kumo/support" in text
    assert not ProjectChange.objects.filter(action="hub_push").exists()


def test_an_export_over_the_size_limit_is_refused(project, users, approved, stand_in, settings):
    settings.SHIKOMI_HUB_MAX_BYTES = 100
    response = push(api_for(users["admin"]), project)
    assert response.status_code == 400
    assert "SHIKOMI_HUB_MAX_BYTES" in json.dumps(response.json())
    assert stand_in.requests == []
