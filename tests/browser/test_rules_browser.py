"""An admin writes a rule and watches its preview change as they type, then saves it."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command

from curation.models import Example, LabelingRule, Project
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_an_admin_writes_a_rule_with_a_live_preview_and_saves_it(page, live_server, screenshot):
    call_command("load_demo")
    base = live_server.url
    sign_in(page, base, "demo-admin")
    page.click("text=Kumo Coffee support assistant")
    page.get_by_role("link", name="Rules", exact=True).click()
    page.click("text=New rule")
    page.wait_for_url("**/rules/new/")

    # Only the chosen kind's parameters show.
    assert page.locator("fieldset[data-kind=keywords]").is_visible()
    assert page.locator("fieldset[data-kind=regex]").is_hidden()
    page.select_option("select[name=kind]", "regex")
    assert page.locator("fieldset[data-kind=regex]").is_visible()
    assert page.locator("fieldset[data-kind=keywords]").is_hidden()
    page.select_option("select[name=kind]", "keywords")

    page.fill("input[name=name]", "bean questions")
    page.select_option("select[name=label]", "product")
    page.locator("textarea[name=keywords_keywords]").press_sequentially("beans")
    page.wait_for_selector("#preview-hits:has-text('5 of 46')")
    assert re.fullmatch(r"5 of 46 examples hit \(\d+%\)", page.locator("#preview-hits").inner_text())
    assert page.locator("#preview-sample mark").first.inner_text().lower() == "beans"
    assert not LabelingRule.objects.filter(name="bean questions").exists()  # nothing saved by typing
    screenshot(page, "preview")

    page.click("text=Save rule")
    page.wait_for_selector("#rule-history")
    rule = LabelingRule.objects.get(name="bean questions")
    assert rule.params["keywords"] == ["beans"] and rule.label.name == "product"
    assert "Rule bean questions saved." in page.locator(".messages").inner_text()

    page.click("text=← Rules")
    row = page.locator("#rule-table tr", has_text="bean questions")
    assert "product" in row.inner_text() and "Keywords" in row.inner_text()
    screenshot(page, "list")


def test_an_admin_applies_the_rules_and_accepts_confident_weak_labels(page, live_server, screenshot):
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    # Ten examples nobody has labeled yet: what weak labels are for.
    unlabeled = list(project.examples.order_by("id").values_list("pk", flat=True)[:10])
    Example.objects.filter(pk__in=unlabeled).update(label=None)
    sign_in(page, live_server.url, "demo-admin")
    page.goto(f"{live_server.url}/p/{project.slug}/rules/")

    page.click("text=Apply rules")
    page.wait_for_selector("#rule-analysis")  # the run page polls until the run is done
    assert page.locator("#rule-analysis tbody tr").count() == 5
    assert "Label model" in page.locator("#models").inner_text()
    page.fill("input[name=threshold]", "0.5")
    # The count follows the threshold as it is typed.
    page.wait_for_function("() => parseInt(document.querySelector('#accept-count').innerText) > 0", timeout=10_000)
    would = int(page.locator("#accept-count").inner_text().split()[0])
    assert 0 < would <= 10
    screenshot(page, "run")

    # Enter in the threshold field submits the form, as a person typing it would.
    with page.expect_navigation():
        page.press("input[name=threshold]", "Enter")
    assert "labeled from rule set v1" in page.locator(".messages").inner_text()
    labeled = Example.objects.filter(pk__in=unlabeled, weak_label__isnull=False)
    assert labeled.count() == would
    assert Example.objects.filter(weak_label__isnull=False).exclude(pk__in=unlabeled).count() == 0

    page.goto(f"{live_server.url}/p/{project.slug}/examples/{labeled.first().pk}/")
    assert re.search(r"rules v1 · (majority · )?[01]\.\d\d", page.locator("main").inner_text())
