"""Settings and member changes through the pages, then used by the queue: an admin asks for two
annotations per example, adds a label with a key, retires another and adds a new annotator; that
annotator's labeling page offers the new label by its key, and the example they labeled stays in
the queue for a second annotator."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from curation.core.services import example_create
from curation.models import Annotation, Label, Membership, Project, ProjectChange, Role
from curation.projects.selectors import labels_offered
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

QUESTIONS = ["My grinder broke after a week.", "Where is my parcel?"]


def _project() -> Project:
    """A project of its own with the demo admin and annotator in it, and a person not yet in it."""
    call_command("load_demo")
    project = Project.objects.create(name="Kumo warranty", slug="kumo-warranty", kind=Project.Kind.CHAT)
    Label.objects.create(project=project, name="billing", shortcut="1", colour="#0f766e")
    Label.objects.create(project=project, name="shipping", colour="#1d4ed8")
    people = get_user_model().objects
    Membership.objects.create(project=project, user=people.get(username="demo-admin"), role=Role.ADMIN)
    Membership.objects.create(project=project, user=people.get(username="demo-annotator"), role=Role.ANNOTATOR)
    people.create_user(username="newbie", email="newbie@example.com", password="shikomi-demo")
    for question in QUESTIONS:
        example_create(
            project=project,
            user=None,
            messages=[{"role": "user", "content": question}, {"role": "assistant", "content": "Let me check."}],
        )
    return project


def _no_wider_than_the_window(page) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_settings_and_members_changed_in_the_pages_are_used_by_the_queue(new_page, live_server, screenshot):
    project = _project()
    base = live_server.url
    admin = new_page()
    admin.on("dialog", lambda dialog: dialog.accept())
    sign_in(admin, base, "demo-admin")
    admin.goto(f"{base}/p/{project.slug}/settings/")

    # Two annotations per example, and guidelines checked in the live preview.
    admin.fill("#id_annotations_per_example", "2")
    admin.fill("#id_guidelines", "Choose **warranty** for broken goods.")
    admin.wait_for_selector("#guidelines-preview strong:has-text('warranty')")
    admin.click("#settings-form button[type=submit]")
    admin.wait_for_selector(".messages li.success:has-text('Settings saved')")

    # A new label with its own key; the old shipping label retired.
    admin.fill("#label-add input[name=name]", "warranty")
    admin.fill("#label-add input[name=shortcut]", "w")
    admin.click("#label-add button[type=submit]")
    admin.wait_for_selector(".messages li.success:has-text('Label warranty added')")
    shipping = project.labels.get(name="shipping")
    admin.click(f"#label-{shipping.pk} button:has-text('Retire')")
    admin.wait_for_selector(f"#label-{shipping.pk}.retired")
    screenshot(admin, "settings")
    _no_wider_than_the_window(admin)

    # A member added by username, as an annotator.
    admin.goto(f"{base}/p/{project.slug}/members/")
    admin.fill("#id_who", "newbie")
    admin.select_option("#id_role", "annotator")
    admin.click("#member-add-form button[type=submit]")
    admin.wait_for_selector("tr[data-member=newbie]")
    screenshot(admin, "members")

    project.refresh_from_db()
    assert project.annotations_per_example == 2
    assert [label.name for label in labels_offered(project)] == ["billing", "warranty"]
    assert Membership.objects.get(project=project, user__username="newbie").role == Role.ANNOTATOR
    recorded = set(ProjectChange.objects.filter(project=project).values_list("action", flat=True))
    assert recorded == {"settings", "label_add", "label_retire", "member_add"}

    # The new annotator labels with the new label's key.
    newbie = new_page()
    sign_in(newbie, base, "newbie")
    newbie.goto(f"{base}/p/{project.slug}/label/")
    first = int(newbie.locator("#label-form").get_attribute("data-example"))
    assert newbie.locator("input[name=label][value=warranty]").get_attribute("data-shortcut") == "w"
    assert newbie.locator("input[name=label][value=shipping]").count() == 0  # retired: not offered
    newbie.keyboard.press("w")
    assert newbie.locator("input[name=label][value=warranty]").is_checked()
    newbie.keyboard.press("Enter")
    newbie.wait_for_function(f"() => document.querySelector('#label-form')?.dataset.example !== '{first}'")
    answer = Annotation.objects.get(example_id=first, annotator__username="newbie")
    assert answer.status == Annotation.Status.SUBMITTED and answer.label.name == "warranty"

    # Two annotations per example: the same example waits for a second annotator.
    colleague = new_page()
    sign_in(colleague, base, "demo-annotator")
    colleague.goto(f"{base}/p/{project.slug}/label/")
    assert int(colleague.locator("#label-form").get_attribute("data-example")) == first


def test_the_settings_and_members_pages_fit_in_japanese(new_page, live_server, screenshot):
    project = _project()
    base = live_server.url
    page = new_page()
    sign_in(page, base, "demo-admin")
    page.set_viewport_size({"width": 768, "height": 900})
    page.goto(f"{base}/p/{project.slug}/settings/")
    page.select_option("select[name=language]", "ja")
    page.wait_for_selector("html[lang=ja]")
    _no_wider_than_the_window(page)
    screenshot(page, "settings-ja")
    page.goto(f"{base}/p/{project.slug}/members/")
    _no_wider_than_the_window(page)
    screenshot(page, "members-ja")


def test_staff_make_a_project_copying_another_from_the_home_page(new_page, live_server, screenshot):
    source = _project()
    get_user_model().objects.filter(username="demo-admin").update(is_staff=True)
    base = live_server.url
    page = new_page()
    sign_in(page, base, "demo-admin")
    page.click("#project-new")
    page.wait_for_load_state("load")  # settings.js listens to the name field once loaded
    page.fill("#id_name", "Kumo Returns 2")
    # The address follows the name until typed into.
    page.wait_for_function("() => document.querySelector('#id_slug').value === 'kumo-returns-2'")
    page.select_option("#id_copy_from", source.slug)
    screenshot(page, "new")
    page.click("#project-new-form button[type=submit]")
    page.wait_for_url(f"{base}/p/kumo-returns-2/settings/")
    copy = Project.objects.get(slug="kumo-returns-2")
    assert sorted(copy.labels.values_list("name", flat=True)) == ["billing", "shipping"]
    assert Membership.objects.get(project=copy, user__username="demo-admin").role == Role.ADMIN
    assert not copy.examples.exists()
