"""A person signs in, browses the demo project, imports a file and exports it back."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from curation.models import Example
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_an_admin_browses_imports_and_exports_the_demo_project(page, live_server, tmp_path, screenshot):
    call_command("load_demo")
    base = live_server.url
    sign_in(page, base, "demo-admin")
    page.click("text=Kumo Coffee support assistant")
    page.click("text=Browse 46 examples")
    assert page.locator("#example-table").inner_text().startswith("46 examples")

    page.select_option("select[name=label]", "billing")
    page.wait_for_function("() => document.querySelector('#example-table p').textContent.trim() !== '46 examples'")
    billing = Example.objects.filter(project__slug="kumo-support", label__name="billing").count()
    assert page.locator("#example-table p").inner_text() == f"{billing} examples"
    assert "label=billing" in page.url  # the filter is in the address, so reload and back work

    upload = tmp_path / "new.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"豆の量は？ {i}"},
                {"role": "assistant", "content": "15 g です。"},
            ],
            "label": "product",
        }
        for i in range(3)
    ]
    upload.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    page.goto(base + "/p/kumo-support/import/")
    page.set_input_files("input[name=file]", str(upload))
    page.select_option("select[name=format]", "openai")
    page.click("text=Upload and import")
    page.wait_for_url("**/imports/*/")
    page.wait_for_selector("#job-status .status.succeeded")
    assert "3" in page.locator("#job-status").inner_text()
    screenshot(page, "import")

    page.goto(base + "/p/kumo-support/export/")
    page.select_option("select[name=format]", "openai")
    page.select_option("select[name=label]", "product")
    # Approved examples only by default; the imported ones need review, so they are ticked in.
    page.check("input[name=status][value=needs_review]")
    with page.expect_download() as download:
        page.click("text=Download")
    lines = download.value.path().read_text(encoding="utf-8").splitlines()
    product = Example.objects.filter(
        project__slug="kumo-support", label__name="product", status__in=["approved", "needs_review"]
    ).count()
    assert len(lines) == product
    assert any("豆の量は？ 2" in line for line in lines)


def test_an_annotator_sees_no_import_and_is_refused_if_they_try(page, live_server):
    call_command("load_demo")
    sign_in(page, live_server.url, "demo-annotator")
    page.goto(live_server.url + "/p/kumo-support/")
    assert page.get_by_role("link", name="Import", exact=True).count() == 0
    assert page.get_by_role("link", name="Browse 46 examples").count() == 1
    response = page.goto(live_server.url + "/p/kumo-support/import/")
    assert response.status == 403
