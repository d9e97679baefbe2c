"""Projects made in the app and the API (blank or copied), their settings, labels and members:
what admins rely on, on a real database, through the services, the pages and the API."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from curation.core.services import example_create
from curation.models import (
    Annotation,
    Example,
    ExampleRevision,
    Label,
    LabelingRule,
    Membership,
    Project,
    ProjectChange,
    PromptTemplate,
    Role,
    RuleRun,
    WeakLabel,
)
from curation.projects import labels as label_services
from curation.projects import members as member_services
from curation.projects.selectors import labels_offered
from curation.projects.services import ProjectError, project_create, project_update, settings_version
from tests.conftest import PASSWORD


def _client(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def maker(django_user_model):
    """A user allowed to make projects: Django's curation.add_project permission, not staff."""
    user = django_user_model.objects.create_user(username="maya", password=PASSWORD, email="maya@example.com")
    user.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="curation"))
    return django_user_model.objects.get(pk=user.pk)  # permissions are cached per object


# --- making projects ---------------------------------------------------------------------------


def test_a_blank_project_gets_a_slug_from_its_name_and_its_maker_as_admin(maker, db):
    first = project_create(user=maker, name="Support Bot")
    second = project_create(user=maker, name="Support Bot", kind="classification")
    japanese = project_create(user=maker, name="お問い合わせ")
    assert (first.slug, second.slug, japanese.slug) == ("support-bot", "support-bot-2", "project")
    assert first.kind == Project.Kind.CHAT and second.kind == Project.Kind.CLASSIFICATION
    assert Membership.objects.get(project=first, user=maker).role == Role.ADMIN
    change = ProjectChange.objects.get(project=first)
    assert change.action == "project_create" and change.user == maker


def test_a_taken_or_malformed_slug_is_refused_naming_the_field(maker, project):
    with pytest.raises(ProjectError) as taken:
        project_create(user=maker, name="Another", slug="support")
    assert taken.value.field == "slug"
    with pytest.raises(ProjectError) as malformed:
        project_create(user=maker, name="Another", slug="has space")
    assert malformed.value.field == "slug"
    with pytest.raises(ProjectError) as nameless:
        project_create(user=maker, name="  ")
    assert nameless.value.field == "name"


def test_only_staff_and_holders_of_add_project_may_make_one(users):
    with pytest.raises(ProjectError) as refused:
        project_create(user=users["admin"], name="Mine")
    assert refused.value.status == 403
    users["admin"].is_staff = True
    assert project_create(user=users["admin"], name="Mine").slug == "mine"


def test_a_copy_takes_the_setup_but_never_the_examples(maker, project, users, example):
    Membership.objects.create(project=project, user=maker, role=Role.ADMIN)
    project.guidelines, project.system_prompt, project.annotations_per_example = "# Be kind", "You help.", 3
    project.label_suggestions = Project.LabelSuggestions.SUGGESTION
    project.save()
    project.labels.filter(name="billing").update(colour="#0f766e")
    Label.objects.create(project=project, name="old", retired=True)
    PromptTemplate.objects.create(project=project, name="ask", version=1, text="v1 {topic}")
    PromptTemplate.objects.create(project=project, name="ask", version=2, text="v2 {topic}")

    copy = project_create(user=maker, name="Support 2", copy_from=project)

    labels = {label.name: (label.colour, label.shortcut) for label in copy.labels.all()}
    assert labels == {"billing": ("#0f766e", "1"), "shipping": ("#64748b", "2")}  # not the retired one
    assert (copy.guidelines, copy.system_prompt, copy.annotations_per_example) == ("# Be kind", "You help.", 3)
    assert copy.kind == project.kind and copy.label_suggestions == Project.LabelSuggestions.SUGGESTION
    assert list(copy.prompt_templates.values_list("name", "version", "text")) == [("ask", 1, "v2 {topic}")]
    assert not copy.examples.exists()
    assert ProjectChange.objects.get(project=copy).detail["copied_from"] == "support"


# --- settings ----------------------------------------------------------------------------------


def test_a_settings_change_is_recorded_before_and_after(project, users):
    project_update(
        project=project,
        user=users["admin"],
        changes={"annotations_per_example": 2, "guidelines": "Use **billing** for money.", "name": project.name},
    )
    project.refresh_from_db()
    assert project.annotations_per_example == 2
    change = ProjectChange.objects.get(project=project, action="settings")
    assert change.user == users["admin"]
    assert change.detail["before"] == {"annotations_per_example": 1, "guidelines": ""}  # name did not change
    assert change.detail["after"] == {"annotations_per_example": 2, "guidelines": "Use **billing** for money."}


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"json_schema": "{not json"}, "json_schema"),
        ({"json_schema": {"type": "objekt"}}, "json_schema"),
        ({"json_schema": [1, 2]}, "json_schema"),
        ({"annotations_per_example": 11}, "annotations_per_example"),
        ({"queue_order": "random"}, "queue_order"),
        ({"kind": "poetry"}, "kind"),
        ({"name": ""}, "name"),
        ({"slug": "elsewhere"}, "slug"),
    ],
)
def test_a_bad_setting_is_refused_naming_its_field(project, users, changes, field):
    with pytest.raises(ProjectError) as refused:
        project_update(project=project, user=users["admin"], changes=changes)
    assert refused.value.field == field
    assert not ProjectChange.objects.filter(project=project).exists()


def test_a_valid_json_schema_is_stored_as_json(project, users):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    project_update(project=project, user=users["admin"], changes={"json_schema": json.dumps(schema)})
    project.refresh_from_db()
    assert project.json_schema == schema


def test_a_save_over_a_newer_change_is_refused(project, users):
    seen = settings_version(project)
    project_update(project=project, user=users["admin"], changes={"system_prompt": "First."}, version=seen)
    with pytest.raises(ProjectError) as stale:
        project_update(project=project, user=users["reviewer"], changes={"system_prompt": "Second."}, version=seen)
    assert stale.value.status == 409
    project.refresh_from_db()
    assert project.system_prompt == "First."


# --- labels ------------------------------------------------------------------------------------


def test_labels_are_added_with_a_unique_key_and_a_checked_colour(project, users):
    label = label_services.label_add(
        project=project, user=users["admin"], name="returns", colour="#AA0000", shortcut="r"
    )
    assert (label.colour, label.shortcut) == ("#aa0000", "r")
    for kwargs, field in [
        ({"name": "refunds", "shortcut": "1"}, "shortcut"),  # billing has it
        ({"name": "refunds", "shortcut": "s"}, "shortcut"),  # the labeling page's skip key
        ({"name": "refunds", "shortcut": "ab"}, "shortcut"),
        ({"name": "refunds", "colour": "red; background: url(x)"}, "colour"),
        ({"name": "billing"}, "name"),
    ]:
        with pytest.raises(ProjectError) as refused:
            label_services.label_add(project=project, user=users["admin"], **kwargs)
        assert refused.value.field == field, kwargs
    assert ProjectChange.objects.filter(project=project, action="label_add").count() == 1


def test_a_retired_label_stays_on_its_examples_but_is_not_offered(project, users, example):
    shipping = project.labels.get(name="shipping")  # its key is 2
    label_services.label_update(label=shipping, user=users["admin"], changes={"retired": True})
    example.refresh_from_db()
    assert example.label == shipping
    assert [label.name for label in labels_offered(project)] == ["billing"]
    # Retired, it holds no key: another label may take "2"; brought back, shipping gives it up.
    label_services.label_add(project=project, user=users["admin"], name="returns", shortcut="2")
    label_services.label_update(label=shipping, user=users["admin"], changes={"retired": False})
    assert [label.name for label in labels_offered(project)] == ["billing", "returns", "shipping"]
    shipping.refresh_from_db()
    assert shipping.shortcut == ""
    actions = list(ProjectChange.objects.filter(project=project).values_list("action", flat=True))
    assert actions == ["label_unretire", "label_add", "label_retire"]


def test_a_label_in_use_cannot_be_deleted_one_unused_can(project, users, example):
    with pytest.raises(ProjectError) as refused:
        label_services.label_delete(label=project.labels.get(name="shipping"), user=users["admin"])
    assert "retire" in refused.value.message
    label_services.label_delete(label=project.labels.get(name="billing"), user=users["admin"])
    assert list(project.labels.values_list("name", flat=True)) == ["shipping"]


def test_merging_moves_everything_that_points_at_the_label(project, users, example):
    shipping, billing = project.labels.get(name="shipping"), project.labels.get(name="billing")
    other = example_create(
        project=project,
        user=None,
        messages=[{"role": "user", "content": "Refund?"}, {"role": "assistant", "content": "Yes."}],
        label="billing",
    )
    Annotation.objects.create(example=example, annotator=users["annotator"], label=shipping, based_on_version=1)
    rule = LabelingRule.objects.create(project=project, name="ship", kind="keywords", params={}, label=shipping)
    run = RuleRun.objects.create(project=project, number=1, status=RuleRun.Status.DONE)
    weak = WeakLabel.objects.create(run=run, example=example, label=shipping, majority_label=shipping, confidence=0.9)
    example.weak_label = weak
    example.save(update_fields=["weak_label"])
    version = example.version

    moved = label_services.label_merge(label=shipping, into=billing, user=users["admin"])

    assert moved == {"examples": 1, "annotations": 1, "rules": 1, "weak_labels": 1}
    example.refresh_from_db()
    assert example.label == billing and example.version == version + 1
    assert example.weak_label_id == weak.pk  # still the rules' label, now under its new name
    revision = example.revisions.first()
    assert revision.action == ExampleRevision.Action.UPDATE and revision.user == users["admin"]
    assert (revision.before["label"], revision.after["label"]) == ("shipping", "billing")
    assert Annotation.objects.get(example=example).label == billing
    rule.refresh_from_db()
    weak.refresh_from_db()
    assert rule.label == billing and weak.label == billing and weak.majority_label == billing
    assert not Label.objects.filter(pk=shipping.pk).exists()
    assert Example.objects.get(pk=other.pk).version == other.version  # untouched
    change = ProjectChange.objects.get(project=project, action="label_merge")
    assert change.detail["moved"]["examples"] == 1


def test_a_label_cannot_merge_into_itself_or_another_project(project, users, maker):
    billing = project.labels.get(name="billing")
    with pytest.raises(ProjectError):
        label_services.label_merge(label=billing, into=billing, user=users["admin"])
    elsewhere = project_create(user=maker, name="Elsewhere")
    foreign = Label.objects.create(project=elsewhere, name="x")
    with pytest.raises(ProjectError) as refused:
        label_services.label_merge(label=billing, into=foreign, user=users["admin"])
    assert refused.value.field == "into"


# --- members -----------------------------------------------------------------------------------


def test_members_are_added_by_username_or_email_and_the_last_admin_stays(project, users, maker):
    admin = users["admin"]
    member_services.member_add(project=project, user=admin, who="MAYA@example.com", role=Role.REVIEWER)
    assert Membership.objects.get(project=project, user=maker).role == Role.REVIEWER
    for who, field in [("nobody", "user"), ("maya", "user"), ("", "user")]:
        with pytest.raises(ProjectError) as refused:
            member_services.member_add(project=project, user=admin, who=who, role=Role.ANNOTATOR)
        assert refused.value.field == field
    with pytest.raises(ProjectError) as bad_role:
        member_services.member_add(project=project, user=admin, who="outsider", role="owner")
    assert bad_role.value.field == "role"

    with pytest.raises(ProjectError) as demoted:
        member_services.member_role_set(project=project, user=admin, user_id=admin.pk, role=Role.ANNOTATOR)
    assert "last admin" in demoted.value.message
    with pytest.raises(ProjectError):
        member_services.member_remove(project=project, user=admin, user_id=admin.pk)
    member_services.member_role_set(project=project, user=admin, user_id=maker.pk, role=Role.ADMIN)
    member_services.member_remove(project=project, user=admin, user_id=admin.pk)  # another admin is left
    assert not Membership.objects.filter(project=project, user=admin).exists()
    actions = list(ProjectChange.objects.filter(project=project).values_list("action", flat=True))
    assert actions == ["member_remove", "member_role", "member_add"]


# --- the API -----------------------------------------------------------------------------------


def test_the_api_makes_a_project_for_those_allowed(maker, users, project):
    Membership.objects.create(project=project, user=maker, role=Role.ADMIN)
    response = _client(maker).post(
        "/api/projects/",
        {"name": "Copy", "copy_from": "support", "description": "A copy."},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "copy" and [label["name"] for label in body["labels"]] == ["billing", "shipping"]
    assert _client(users["admin"]).post("/api/projects/", {"name": "X"}).status_code == 403

    refused = _client(maker).post("/api/projects/", {"name": "Y", "copy_from": "copy-of-nothing"})
    assert refused.status_code == 400 and "copy_from" in refused.json()
    # An admin of a project that is not theirs to copy: the reviewer's project is not offered.
    Membership.objects.filter(project=project, user=maker).update(role=Role.REVIEWER)
    assert _client(maker).post("/api/projects/", {"name": "Z", "copy_from": "support"}).status_code == 400


def test_the_api_changes_settings_for_admins_only(project, users):
    url = f"/api/projects/{project.slug}/"
    for role, expected in [("annotator", 403), ("reviewer", 403), ("outsider", 404)]:
        response = _client(users[role]).patch(url, {"system_prompt": "x"}, content_type="application/json")
        assert response.status_code == expected, role
    admin = _client(users["admin"])
    version = admin.get(url).json()["settings_version"]
    response = admin.patch(
        url, {"annotations_per_example": 2, "settings_version": version}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["annotations_per_example"] == 2
    stale = admin.patch(url, {"system_prompt": "late", "settings_version": version}, content_type="application/json")
    assert stale.status_code == 409 and stale.json()["current"]["annotations_per_example"] == 2
    bad = admin.patch(url, {"json_schema": {"type": 5}}, content_type="application/json")
    assert bad.status_code == 400 and "json_schema" in bad.json()
    assert ProjectChange.objects.filter(project=project, action="settings").count() == 1


def test_the_members_api(project, users, maker):
    url = f"/api/projects/{project.slug}/members/"
    for role, expected in [("annotator", 403), ("reviewer", 403), ("outsider", 404)]:
        assert _client(users[role]).get(url).status_code == expected, role
    admin = _client(users["admin"])
    listed = admin.get(url).json()["results"]
    assert {m["username"]: m["role"] for m in listed} == {"adam": "admin", "annie": "annotator", "rhea": "reviewer"}
    added = admin.post(url, {"user": "maya", "role": "annotator"}, content_type="application/json")
    assert added.status_code == 201 and added.json()["user_id"] == maker.pk
    ghost = admin.post(url, {"user": "ghost", "role": "annotator"})
    assert ghost.status_code == 400 and "No user with the username or email address ghost" in ghost.json()["user"][0]
    changed = admin.patch(f"{url}{maker.pk}/", {"role": "reviewer"}, content_type="application/json")
    assert changed.json()["role"] == "reviewer"
    last = admin.patch(f"{url}{users['admin'].pk}/", {"role": "annotator"}, content_type="application/json")
    assert last.status_code == 400 and "last admin" in last.json()["role"][0]
    assert admin.delete(f"{url}{maker.pk}/").status_code == 204
    assert admin.delete(f"{url}{maker.pk}/").status_code == 404


# --- the pages ---------------------------------------------------------------------------------


def test_the_settings_page_saves_and_names_a_bad_field(project, users):
    url = f"/p/{project.slug}/settings/"
    assert _client(users["annotator"]).get(url).status_code == 403
    assert _client(users["outsider"]).get(url).status_code == 404
    admin = _client(users["admin"])
    page = admin.get(url)
    assert page.status_code == 200
    form = {
        "name": "Support bot",
        "description": "",
        "kind": "chat",
        "guidelines": "",
        "system_prompt": "",
        "annotations_per_example": "2",
        "queue_order": "oldest",
        "label_suggestions": "hidden",
        "structured_format": "json",
        "json_schema": '{"type": "objekt"}',
        "settings_version": page.context["form"].initial["settings_version"],
    }
    refused = admin.post(url, form)
    assert refused.status_code == 400
    assert "Not a valid JSON Schema at $.type" in refused.context["form"].errors["json_schema"][0]
    saved = admin.post(url, {**form, "json_schema": ""})
    assert saved.status_code == 302
    project.refresh_from_db()
    assert project.annotations_per_example == 2
    assert "Settings changed" in admin.get(url).content.decode()


def test_the_guidelines_preview_is_rendered_and_escaped(project, users):
    response = _client(users["admin"]).post(
        f"/p/{project.slug}/settings/preview/", {"guidelines": "**Bold** <script>alert(1)</script>"}
    )
    html = response.content.decode()
    assert "<strong>Bold</strong>" in html and "<script>" not in html


def test_the_home_page_offers_a_new_project_to_those_allowed(users, maker):
    assert "New project" not in _client(users["admin"]).get("/").content.decode()
    assert _client(users["admin"]).get("/projects/new/").status_code == 403
    client = _client(maker)
    assert "New project" in client.get("/").content.decode()
    response = client.post("/projects/new/", {"name": "Fresh start", "slug": "", "kind": "", "copy_from": ""})
    assert response.status_code == 302 and response["Location"] == "/p/fresh-start/settings/"
    taken = client.post("/projects/new/", {"name": "Again", "slug": "fresh-start"})
    assert taken.status_code == 400 and taken.context["form"].errors["slug"]


def test_the_label_and_member_pages_change_things(project, users, maker):
    admin = _client(users["admin"])
    base = f"/p/{project.slug}"
    admin.post(f"{base}/settings/labels/", {"name": "returns", "colour": "#aa0000", "shortcut": "r"})
    returns = project.labels.get(name="returns")
    admin.post(f"{base}/settings/labels/{returns.pk}/", {"name": "refunds", "colour": "#aa0000", "shortcut": "f"})
    returns.refresh_from_db()
    assert (returns.name, returns.shortcut) == ("refunds", "f")
    refused = admin.post(f"{base}/settings/labels/{returns.pk}/", {"shortcut": "1"}, follow=True)
    assert "Key: The key 1 is taken by the label billing." in refused.content.decode()
    admin.post(f"{base}/settings/labels/{returns.pk}/retire/", {"retired": "1"})
    assert [label.name for label in labels_offered(project)] == ["billing", "shipping"]

    admin.post(f"{base}/members/", {"who": "maya", "role": "annotator"})
    assert Membership.objects.get(project=project, user=maker).role == Role.ANNOTATOR
    last = admin.post(f"{base}/members/{users['admin'].pk}/remove/", follow=True)
    assert "last admin" in last.content.decode()
    admin.post(f"{base}/members/{maker.pk}/", {"role": "reviewer"})
    assert Membership.objects.get(project=project, user=maker).role == Role.REVIEWER
    page = admin.get(f"{base}/members/").content.decode()
    assert "maya" in page and "Inviting by email is not available" in page


def test_the_settings_page_keeps_your_typing_when_someone_saved_first(project, users):
    url = f"/p/{project.slug}/settings/"
    admin = _client(users["admin"])
    form = {**admin.get(url).context["form"].initial, "system_prompt": "Mine.", "json_schema": ""}
    project_update(project=project, user=users["superuser"], changes={"guidelines": "Theirs."})
    conflict = admin.post(url, form)
    assert conflict.status_code == 409
    assert "Someone changed the settings" in conflict.content.decode()
    assert conflict.context["form"]["system_prompt"].value() == "Mine."
    project.refresh_from_db()
    assert (project.system_prompt, project.guidelines) == ("", "Theirs.")
    resent = {**form, "settings_version": conflict.context["form"]["settings_version"].value()}
    assert admin.post(url, resent).status_code == 302  # saved on purpose, over theirs
