"""The chat editor's check of a call as its arguments are typed: the example's tools decide,
members only, the answer escaped."""

from __future__ import annotations

import pytest

from curation.core.services import example_create
from curation.models import Project
from tests.conftest import PASSWORD
from tests.curation.test_chat_editor_post import CALLING, WEATHER


@pytest.fixture
def calling(project, users):
    return example_create(project=project, user=users["annotator"], messages=CALLING, tools=[WEATHER])


def check(client, project, example, function="get_weather", arguments='{"city": "Kyoto"}'):
    return client.post(
        f"/p/{project.slug}/examples/{example.pk}/tool-arguments/", {"function": function, "arguments": arguments}
    )


def signed_in(client, username: str):
    assert client.login(username=username, password=PASSWORD)
    return client


def test_arguments_that_fit_the_schema_get_an_empty_answer(client, users, project, calling):
    response = check(signed_in(client, "annie"), project, calling)

    assert response.status_code == 200 and response.content == b""


def test_arguments_that_do_not_fit_get_the_schema_error(client, users, project, calling):
    response = check(signed_in(client, "annie"), project, calling, arguments='{"city": 5}')

    assert response.status_code == 200
    assert response.content.decode() == "$.city: 5 is not of type &#x27;string&#x27;"


def test_text_that_is_not_json_gets_the_canonical_checks_message(client, users, project, calling):
    response = check(signed_in(client, "annie"), project, calling, arguments='{"city": ')

    assert response.content.decode().startswith("not valid JSON")


def test_the_answer_is_escaped(client, users, project, calling):
    response = check(signed_in(client, "annie"), project, calling, function="<script>alert(1)</script>")

    html = response.content.decode()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "unknown function" in html


def test_over_long_arguments_are_refused_before_they_are_read(client, users, project, calling, settings):
    settings.SHIKOMI_MAX_ROW_BYTES = 100
    response = check(signed_in(client, "annie"), project, calling, arguments='{"city": "' + "x" * 200 + '"}')

    assert "SHIKOMI_MAX_ROW_BYTES" in response.content.decode()


def test_someone_outside_the_project_gets_404(client, users, project, calling):
    response = check(signed_in(client, "outsider"), project, calling)

    assert response.status_code == 404


def test_someone_signed_out_is_not_answered(client, users, project, calling):
    response = check(client, project, calling)

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_example_of_another_project_is_404(client, users, project, calling):
    other = Project.objects.create(name="Other", slug="other")
    foreign = example_create(project=other, user=users["admin"], messages=CALLING, tools=[WEATHER])

    response = check(signed_in(client, "annie"), project, foreign)

    assert response.status_code == 404


def test_the_check_is_a_post(client, users, project, calling):
    response = signed_in(client, "annie").get(f"/p/{project.slug}/examples/{calling.pk}/tool-arguments/")

    assert response.status_code == 405
