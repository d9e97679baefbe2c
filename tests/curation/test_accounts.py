"""Accounts: sign-in throttling (django-axes) and API tokens (django-rest-knox).

Real sign-ins through the login page and the token endpoint, real tokens in the database;
nothing of ours is mocked.
"""

from __future__ import annotations

import hashlib

from django.core.management import call_command
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import APIToken
from accounts.services import api_token_create
from tests.conftest import PASSWORD

LOGIN = "/accounts/login/"
TOKEN = "/api/auth/token/"
PROJECTS = "/api/projects/"


def _fail(client, url: str, username: str, times: int, **extra):
    response = None
    for _ in range(times):
        response = client.post(url, {"username": username, "password": "wrong guess"}, **extra)
    return response


def _api(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# --- Sign-in throttling -------------------------------------------------------------------


def test_twenty_wrong_passwords_lock_the_login_page_even_for_the_right_password(users):
    client = Client()
    assert _fail(client, LOGIN, "rhea", 19).status_code == 200  # the form again, with its error
    locked = _fail(client, LOGIN, "rhea", 1)
    assert locked.status_code == 429
    response = client.post(LOGIN, {"username": "rhea", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins for this account from your address. Try again in 30 minutes" in (
        response.content.decode()
    )
    assert response["Retry-After"] == "1800"
    assert "_auth_user_id" not in client.session


def test_twenty_wrong_passwords_lock_the_token_endpoint_even_for_the_right_password(users):
    client = APIClient()
    assert _fail(client, TOKEN, "rhea", 19).status_code == 400
    assert _fail(client, TOKEN, "rhea", 1).status_code == 429
    response = client.post(TOKEN, {"username": "rhea", "password": PASSWORD})
    assert response.status_code == 429
    assert "Try again in 30 minutes, or ask an admin to unlock the account" in response.json()["detail"]
    assert "token" not in response.json() and not APIToken.objects.exists()


def test_an_admin_unlocks_an_account_with_axes_reset_username(users):
    client = Client()
    _fail(client, LOGIN, "rhea", 20)
    call_command("axes_reset_username", "rhea")
    assert client.post(LOGIN, {"username": "rhea", "password": PASSWORD}).status_code == 302


def test_a_stranger_guessing_does_not_lock_out_the_user_at_another_address(users):
    _fail(Client(REMOTE_ADDR="203.0.113.9"), LOGIN, "rhea", 25)
    colleague = Client(REMOTE_ADDR="198.51.100.7")
    assert colleague.post(LOGIN, {"username": "rhea", "password": PASSWORD}).status_code == 302


def test_behind_a_proxy_the_address_it_saw_is_locked_not_what_the_client_claims(users, settings):
    settings.SHIKOMI_PROXY_COUNT = 1
    client = Client(REMOTE_ADDR="10.0.0.2")  # our proxy
    for attempt in range(20):
        # The client makes up a new address each time; the proxy appends the real one.
        client.post(
            LOGIN,
            {"username": "rhea", "password": "wrong guess"},
            HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}, 203.0.113.9",
        )
    right = {"username": "rhea", "password": PASSWORD}
    assert client.post(LOGIN, right, HTTP_X_FORWARDED_FOR="192.0.2.200, 203.0.113.9").status_code == 429
    # Someone else behind the same proxy is not locked out.
    assert client.post(LOGIN, right, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302


def test_a_successful_sign_in_clears_the_count_of_earlier_typos(users):
    client = Client()
    _fail(client, LOGIN, "rhea", 15)
    assert client.post(LOGIN, {"username": "rhea", "password": PASSWORD}).status_code == 302
    client.logout()
    assert _fail(client, LOGIN, "rhea", 15).status_code == 200


# --- API tokens ----------------------------------------------------------------------------


def test_the_token_endpoint_gives_a_new_named_token_that_calls_the_api(users, project):
    response = APIClient().post(TOKEN, {"username": "rhea", "password": PASSWORD, "name": "nightly export"})
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "nightly export" and body["id"] == body["token"][:15] and body["expiry"]
    client = _api(body["token"])
    assert client.get(PROJECTS).status_code == 200
    listed = client.get("/api/auth/tokens/").json()
    assert [(t["id"], t["name"]) for t in listed] == [(body["id"], "nightly export")]
    assert listed[0]["last_used"] is not None
    assert "token" not in listed[0]


def test_a_wrong_password_gets_no_token(users):
    response = APIClient().post(TOKEN, {"username": "rhea", "password": "wrong guess"})
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["That username and password do not match."]}


def test_tokens_are_not_stored_in_clear(users):
    token, key = api_token_create(user=users["reviewer"], name="script")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {APIToken._meta.db_table}")
        stored = [str(value) for row in cursor.fetchall() for value in row]
    assert stored and not any(key in value for value in stored)
    assert token.digest == hashlib.sha512(key.encode()).hexdigest()


def test_a_token_revoked_through_the_api_is_refused(users):
    _token, key = api_token_create(user=users["reviewer"], name="script")
    client = _api(key)
    assert client.delete(f"/api/auth/tokens/{key[:15]}/").status_code == 204
    response = client.get(PROJECTS)
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_a_token_revoked_on_the_page_is_refused(users, client):
    _token, key = api_token_create(user=users["reviewer"], name="laptop")
    client.login(username="rhea", password=PASSWORD)
    response = client.post(f"/account/tokens/{key[:15]}/revoke/", follow=True)
    assert "Token revoked: programs that use it can no longer call the API." in response.content.decode()
    assert "laptop" not in response.content.decode()
    assert _api(key).get(PROJECTS).status_code == 401


def test_the_tokens_page_shows_a_new_key_once_and_then_only_its_start(users, client):
    client.login(username="rhea", password=PASSWORD)
    made = client.post("/account/tokens/", {"name": "CI pipeline"})
    assert made.status_code == 200 and "no-store" in made["Cache-Control"]
    key = APIToken.objects.get(user=users["reviewer"]).token_key
    html = made.content.decode()
    full_key = html.split("<code data-token>")[1].split("</code>")[0]
    assert full_key.startswith(key) and len(full_key) == 64
    assert _api(full_key).get(PROJECTS).status_code == 200
    later = client.get("/account/tokens/").content.decode()
    assert "CI pipeline" in later and key[:8] in later and full_key not in later


def test_a_token_needs_a_name(users, client):
    client.login(username="rhea", password=PASSWORD)
    response = client.post("/account/tokens/", {"name": "   "})
    assert response.status_code == 400
    assert "Give the token a name, so you can tell it apart later." in response.content.decode()
    assert not APIToken.objects.exists()


def test_a_token_dies_when_the_password_changes_on_the_page(users, client):
    _token, key = api_token_create(user=users["reviewer"], name="script")
    client.login(username="rhea", password=PASSWORD)
    response = client.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": "a new long passphrase", "new_password2": "a new long passphrase"},
    )
    assert response.status_code == 302
    refused = _api(key).get(PROJECTS)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "This token stopped working when the password changed. Make a new one."
    assert not APIToken.objects.exists()  # and it is gone for good
    # The session that changed the password goes on; its token list is empty.
    assert "You have no API tokens." in client.get("/account/tokens/").content.decode()


def test_a_token_dies_when_an_admin_sets_the_password_in_django_admin(users, client):
    _token, key = api_token_create(user=users["reviewer"], name="script")
    client.login(username="root", password=PASSWORD)
    response = client.post(
        f"/admin/auth/user/{users['reviewer'].pk}/password/",
        {"password1": "a new long passphrase", "password2": "a new long passphrase", "usable_password": "true"},
    )
    assert response.status_code == 302
    assert _api(key).get(PROJECTS).status_code == 401


def test_a_token_dies_when_the_password_is_set_from_the_command_line(users):
    # `changepassword` and any other code path do what this does: set_password, save.
    _token, key = api_token_create(user=users["reviewer"], name="script")
    users["reviewer"].set_password("a new long passphrase")
    users["reviewer"].save()
    assert _api(key).get(PROJECTS).status_code == 401


def test_a_user_can_neither_see_nor_revoke_anothers_token(users, client):
    _token, theirs = api_token_create(user=users["admin"], name="adam's script")
    _mine, mine = api_token_create(user=users["reviewer"], name="rhea's script")
    me = _api(mine)
    assert [t["name"] for t in me.get("/api/auth/tokens/").json()] == ["rhea's script"]
    response = me.delete(f"/api/auth/tokens/{theirs[:15]}/")
    assert response.status_code == 404
    assert response.json()["detail"] == "You have no token with this id."
    client.login(username="rhea", password=PASSWORD)
    assert client.post(f"/account/tokens/{theirs[:15]}/revoke/").status_code == 404
    assert "adam's script" not in client.get("/account/tokens/").content.decode()
    assert _api(theirs).get(PROJECTS).status_code == 200


def test_the_tokens_page_does_not_query_per_token(users, client, django_assert_max_num_queries):
    for n in range(10):
        api_token_create(user=users["reviewer"], name=f"script {n}")
    client.login(username="rhea", password=PASSWORD)
    with django_assert_max_num_queries(6):
        assert client.get("/account/tokens/").status_code == 200


def test_a_name_longer_than_the_limit_is_refused_with_the_limit(users):
    response = APIClient().post(TOKEN, {"username": "rhea", "password": PASSWORD, "name": "x" * 101})
    assert response.status_code == 400
    assert response.json() == {"name": ["The name is too long: at most 100 characters."]}


# --- The demo accounts ---------------------------------------------------------------------


def test_migrating_creates_no_account(db, django_user_model):
    # The test database was built by running every migration.
    assert not django_user_model.objects.exists()


def test_only_load_demo_creates_the_demo_superuser(db, django_user_model):
    assert not django_user_model.objects.filter(is_superuser=True).exists()
    call_command("load_demo")
    assert list(django_user_model.objects.filter(is_superuser=True).values_list("username", flat=True)) == [
        "demo-admin"
    ]
