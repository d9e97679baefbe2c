"""The pictures of the user guide (docs/guide/), taken on the demo project as each role sees it.

Run as part of the suite, they check that every page of the guide opens for its role and
fits the window. With SHIKOMI_GUIDE_IMAGES set (``make guide``), they are written to
docs/guide/img/, so the guide's pictures are the pages as they are now, never stale ones;
tests/test_guide.py checks that the guide names exactly these pictures.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse

from curation.models import Project
from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

GUIDE_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "guide" / "img"
# (role, picture name, URL name, what to do on the page before the picture: a key or None)
SHOTS = {
    "demo-annotator": [
        ("annotator-project", "project_detail", None),
        ("annotator-label", "label_queue", None),
        ("annotator-label-edit", "label_queue", "e"),
        ("annotator-examples", "example_list", None),
    ],
    "demo-reviewer": [
        ("reviewer-review-examples", "example_review_queue", None),
        ("reviewer-review-drafts", "review_queue", None),
        ("reviewer-disagreements", "disagreement_list", None),
        ("reviewer-export", "export", None),
    ],
    "demo-admin": [
        ("admin-new-project", "project_new", None),
        ("admin-settings", "project_settings", None),
        ("admin-members", "project_members", None),
        ("admin-import", "import_upload", None),
        ("admin-sources", "source_new", None),
        ("admin-rules", "rule_list", None),
        ("admin-quality", "quality", None),
        ("admin-splits", "splits", None),
        ("admin-launch", "run_new", None),
    ],
}
NAMES = [name for shots in SHOTS.values() for name, _url, _key in shots]


def _url(project: Project, name: str) -> str:
    return reverse(name) if name == "project_new" else reverse(name, args=[project.slug])


@pytest.mark.parametrize("username", list(SHOTS))
def test_the_guide_pictures_each_role_sees(username, new_page, live_server, tmp_path):
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    folder = GUIDE_IMAGES if os.environ.get("SHIKOMI_GUIDE_IMAGES") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 860})
    sign_in(page, live_server.url, username)
    for name, url_name, key in SHOTS[username]:
        response = page.goto(live_server.url + _url(project, url_name))
        assert response is not None and response.status == 200, (name, response and response.status)
        page.wait_for_load_state("networkidle")
        if key:
            page.keyboard.press(key)
            page.wait_for_timeout(200)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), name
        page.screenshot(path=str(folder / f"{name}.png"))
