"""The user guide names exactly the pictures its browser test takes, and each is there."""

from __future__ import annotations

import re
from pathlib import Path

from tests.browser.test_guide_in_browser import GUIDE_IMAGES, NAMES

GUIDE = GUIDE_IMAGES.parent


def test_the_guide_shows_the_pictures_the_browser_test_takes():
    named = set()
    for page in GUIDE.glob("*.md"):
        named |= set(re.findall(r"\]\(img/([\w-]+)\.png\)", page.read_text(encoding="utf-8")))
    assert named == set(NAMES)
    missing = [name for name in NAMES if not (GUIDE_IMAGES / f"{name}.png").is_file()]
    assert not missing, f"run `make guide` to take {missing}"


def test_every_role_has_its_page():
    for role in ("annotator", "reviewer", "admin"):
        assert (GUIDE / f"{role}.md").is_file()
    assert Path(GUIDE / "README.md").is_file()
