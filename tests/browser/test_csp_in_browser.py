"""The Content-Security-Policy (config/settings.py) is on in every setup: the main pages load,
work and report no violation in a real browser, and what moved out of the templates for it
(htmx's eval, its inline indicator style, the history page's refused restore) still works."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from curation.core.services import example_update
from curation.models import Example, Project
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

# Registered before any page script runs; DevTools-injected, so the policy does not block it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


def watch(page) -> list[str]:
    """Console errors and warnings of the page, as they come (CSP refusals are logged there)."""
    problems: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    # Django admin's pages name no icon, so the browser asks for /favicon.ico (a 404).
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    return problems


def visit(page, url: str, problems: list[str]) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    assert "content-security-policy" in response.headers, url
    page.wait_for_load_state("networkidle")
    violations = page.evaluate("window.__violations")
    assert violations == [] and problems == [], f"{url}: {violations} {problems}"


def test_the_main_pages_load_without_a_content_security_policy_violation(page, live_server, screenshot):
    call_command("load_demo")
    base = live_server.url
    project = Project.objects.get(slug="kumo-support")
    example = Example.objects.filter(project=project).order_by("pk").first()
    problems = watch(page)
    sign_in(page, base, "demo-admin")

    for path in (
        "/",
        f"/p/{project.slug}/",
        f"/p/{project.slug}/examples/",
        f"/p/{project.slug}/examples/{example.pk}/",
        f"/p/{project.slug}/examples/{example.pk}/history/",
        f"/p/{project.slug}/label/",
        f"/p/{project.slug}/rules/",
        f"/p/{project.slug}/rules/new/",
        f"/p/{project.slug}/quality/",
        f"/p/{project.slug}/splits/",
        f"/p/{project.slug}/import/",
        f"/p/{project.slug}/export/",
        f"/p/{project.slug}/drafts/",
        f"/p/{project.slug}/runs/",
        f"/p/{project.slug}/judge/",
        "/api/docs/",
        "/admin/",
        f"/admin/curation/example/{example.pk}/change/",
    ):
        visit(page, base + path, problems)

    # htmx still works without eval: the search box filters the list as one types.
    visit(page, f"{base}/p/{project.slug}/examples/", problems)
    first_row = page.locator("#example-table tbody tr").first.inner_text()
    page.fill("input[name=q]", "zzzz-no-such-text")
    page.wait_for_function("(row) => !document.querySelector('#example-table').innerText.includes(row)", arg=first_row)
    screenshot(page, "search")
    # Swagger UI drew the API from its own script, served from ?script instead of inline.
    visit(page, base + "/api/docs/", problems)
    page.wait_for_selector(".swagger-ui .opblock")
    screenshot(page, "api-docs")
    assert page.evaluate("window.__violations") == [] and problems == []


def test_a_refused_restore_still_explains_why_on_the_history_page(page, live_server, screenshot):
    call_command("load_demo")
    base = live_server.url
    project = Project.objects.get(slug="kumo-support")
    example = Example.objects.filter(project=project).order_by("pk").first()
    admin = project.memberships.get(user__username="demo-admin").user
    example = example_update(example=example, user=admin, version=example.version, split="test")
    problems = watch(page)
    sign_in(page, base, "demo-admin")
    visit(page, f"{base}/p/{project.slug}/examples/{example.pk}/history/", problems)

    # Someone else saves while the page is open: the restore is refused with 409.
    example_update(example=example, user=admin, version=example.version, split="train")
    page.locator("form.restore button").first.click()

    alert = page.locator("#history .history-error")
    alert.wait_for()
    assert "someone saved this example since you opened it" in alert.inner_text()
    screenshot(page, "refused-restore")
    assert page.evaluate("window.__violations") == []
    # The browser logs the 409 itself; nothing else may appear.
    assert all("409" in p for p in problems), problems


def test_messages_are_styled_by_kind_and_the_split_preview_keeps_the_token_out_of_the_address(
    page, live_server, screenshot
):
    call_command("load_demo")
    base = live_server.url
    project = Project.objects.get(slug="kumo-support")
    problems = watch(page)
    sign_in(page, base, "demo-admin")
    visit(page, f"{base}/p/{project.slug}/", problems)
    screenshot(page, "dashboard")

    visit(page, f"{base}/p/{project.slug}/splits/", problems)
    page.click("#split-form button[name=preview]")
    page.wait_for_selector("#split-preview")
    screenshot(page, "preview")
    assert "preview=1" in page.url and "csrfmiddlewaretoken" not in page.url
    page.click("#split-assign button[type=submit]")
    success = page.locator(".messages li.success")
    success.wait_for()
    # The app sends no warning here: one beside it shows how the two kinds look.
    page.evaluate("""() => {
      const li = document.createElement("li");
      li.className = "message warning";
      li.innerHTML = '<span role="alert"><strong class="message-kind">Warning:</strong> Careful.</span>';
      document.querySelector(".messages").append(li);
    }""")
    background = "(el) => getComputedStyle(el).backgroundColor"
    warning = page.locator(".messages li.warning")
    assert success.evaluate(background) != warning.evaluate(background)
    assert success.locator(".message-kind").inner_text() == "Done:"
    screenshot(page, "messages")
    assert page.evaluate("window.__violations") == [] and problems == []
