"""The visual pass: messages styled by their kind, number columns right-aligned with their
headers, the split preview that keeps the CSRF token out of the address, and a reply cut at
the token limit that ends on a whole character."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages import constants
from django.contrib.messages.storage.base import Message
from django.template.loader import render_to_string
from django.test import RequestFactory
from lxml import html as lxml_html

from curation.core.services import example_create
from curation.labeling import services as labeling
from curation.models import Example
from llm.local import LocalBackend, drop_partial_character
from tests.conftest import PASSWORD

CUT = "\ufffd"


def render_messages(*messages: Message) -> lxml_html.HtmlElement:
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    return lxml_html.fromstring(render_to_string("base.html", {"messages": list(messages)}, request=request))


def columns_missing_a_num_header(page: str) -> list[str]:
    """The header cells of columns whose body cells are numbers (td.num) but whose header is not."""
    missing = []
    for table in lxml_html.fromstring(page).iter("table"):
        headers = table.xpath("./thead/tr[1]/th")
        numeric = {i for row in table.xpath("./tbody/tr") for i, cell in enumerate(row) if "num" in cell.classes}
        missing += [
            headers[i].text_content().strip()
            for i in sorted(numeric)
            if i < len(headers) and "num" not in headers[i].classes
        ]
    return missing


def test_each_message_kind_has_its_class_word_and_role() -> None:
    page = render_messages(
        Message(constants.SUCCESS, "Saved."),
        Message(constants.INFO, "Queued."),
        Message(constants.WARNING, "Careful."),
        Message(constants.ERROR, "Refused."),
    )
    items = page.xpath("//ul[@class='messages']/li")
    assert [sorted(li.classes) for li in items] == [
        ["message", "success"],
        ["info", "message"],
        ["message", "warning"],
        ["error", "message"],
    ]
    # The kind is written out, not told by colour alone; problems interrupt, the rest wait.
    assert [li.find_class("message-kind")[0].text for li in items] == ["Done:", "Note:", "Warning:", "Error:"]
    assert [li.xpath(".//*[@role]")[0].get("role") for li in items] == ["status", "status", "alert", "alert"]
    assert items[0].text_content().strip() == "Done: Saved."


def test_every_kind_class_the_templates_use_has_a_style() -> None:
    from django.conf import settings

    css = (settings.BASE_DIR / "static" / "css" / "shikomi.css").read_text()
    for selector in (
        ".messages li.success",
        ".messages li.warning",
        ".messages li.error",
        "th.num",
        ".warning {",
        "button.danger",
        "tr.selected",
    ):
        assert selector in css, selector


def test_the_dashboard_right_aligns_the_headers_of_its_number_columns(client, project, users) -> None:
    project.annotations_per_example = 2
    project.save()
    for i in range(4):
        example = example_create(
            project=project,
            user=users["admin"],
            messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
        )
        labeling.annotation_submit(example=example, user=users["annotator"], based_on_version=1, label="billing")
        labeling.annotation_submit(
            example=example, user=users["reviewer"], based_on_version=example.version, label="shipping"
        )
    client.force_login(users["admin"])
    page = client.get(f"/p/{project.slug}/").content.decode()
    assert "Cohen's κ" in page
    assert columns_missing_a_num_header(page) == []


@pytest.fixture
def twenty(project, users) -> None:
    for i in range(20):
        example_create(
            project=project,
            user=users["admin"],
            label="billing" if i < 16 else "shipping",
            messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
        )


def test_the_split_preview_is_a_get_without_the_csrf_token_and_assigns_what_it_showed(client, project, users, twenty):
    client.login(username="adam", password=PASSWORD)
    settings = {"method": "random", "train": "0.5", "validation": "0.25", "test": "0.25", "seed": "3"}
    page = lxml_html.fromstring(
        client.get(f"/p/{project.slug}/splits/?{urlencode({**settings, 'preview': 1})}").content
    )
    assert columns_missing_a_num_header(lxml_html.tostring(page, encoding="unicode")) == []
    for form in page.iter("form"):
        if (form.get("method") or "get").lower() == "get":
            assert not form.xpath(".//input[@name='csrfmiddlewaretoken']"), form.get("id")
    assert not Example.objects.exclude(split="unassigned").exists()

    [assign] = page.xpath("//form[@id='split-assign']")
    assert assign.get("method") == "post" and assign.xpath(".//input[@name='csrfmiddlewaretoken']")
    posted = {i.get("name"): i.get("value") for i in assign.xpath(".//input[@type='hidden']")}
    assert {k: posted[k] for k in settings} == settings and posted["action"] == "assign"
    assert "only_unassigned" not in posted
    response = client.post(f"/p/{project.slug}/splits/", posted, follow=True)
    assert Example.objects.filter(split="train").count() == 10
    assert b'class="message success"' in response.content and b"20 examples moved." in response.content


def test_the_splits_page_offers_no_assign_form_before_a_preview(client, project, users, twenty):
    client.force_login(users["admin"])
    page = lxml_html.fromstring(client.get(f"/p/{project.slug}/splits/").content)
    assert page.xpath("//form[@id='split-assign']") == []
    assert page.get_element_by_id("split-form").get("method") == "get"


@pytest.mark.parametrize(
    ("decoded", "kept"),
    [
        ("答えは東京で\ufffd", "答えは東京で"),
        ("café \ufffd\ufffd", "café "),
        ("whole words", "whole words"),
        ("\ufffd", ""),
        ("a \ufffd in the middle", "a \ufffd in the middle"),
    ],
)
def test_a_cut_reply_drops_only_its_trailing_half_character(decoded: str, kept: str) -> None:
    assert drop_partial_character(decoded) == kept


class Scripted(LocalBackend):
    """The embedded tokenizer, with the reply's tokens given instead of generated."""

    def __init__(self, tokens: list[int]) -> None:
        super().__init__()
        self.tokens = tokens

    def generate_token_ids(self, conversations, *, max_new_tokens=64, temperature=0.0, tools=None):
        return [self.tokens for _ in conversations]


def test_a_japanese_reply_cut_at_the_token_limit_ends_on_a_whole_character() -> None:
    tokenizer, _model = LocalBackend().load()
    full = tokenizer("答えは東京です", add_special_tokens=False)["input_ids"]
    # A byte-level tokenizer spells a kanji in more than one token: cut between them.
    cut = next(k for k in range(1, len(full)) if tokenizer.decode(full[:k]).endswith(CUT))
    conversation = [{"role": "user", "content": "首都は?"}]

    [reply] = Scripted(full[:cut]).generate_detailed([conversation], max_new_tokens=cut)
    assert reply.truncated is True
    assert not reply.text.endswith(CUT) and "答えは東京です".startswith(reply.text)
    # A reply that was not cut is left as the model wrote it.
    [whole] = Scripted(full[:cut]).generate_detailed([conversation], max_new_tokens=cut + 5)
    assert whole.truncated is False and whole.text.endswith(CUT)
