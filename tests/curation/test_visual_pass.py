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


# --- Text cut to fit, and the examples list ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "kept"),
    [
        ("short", 10, "short"),
        ("東京都渋谷区の店舗", 4, "東京都渋"),
        ("cafe\u0301 au lait", 4, "caf"),  # é written as e + accent: not parted
        ("か\u3099き", 1, ""),  # が as か + voicing mark
        ("ok 👩\u200d💻 done", 4, "ok"),  # a joined emoji is kept whole or not at all
        ("ok 👍🏽 done", 4, "ok"),  # and an emoji with its skin tone
        ("🇯🇵🇫🇷🇩🇪", 3, "🇯🇵"),  # flags are pairs
        ("words   and more", 8, "words"),  # no trailing space before the mark
        ("broken \ufffd\ufffd and more", 9, "broken"),  # nor a half-decoded character
    ],
)
def test_a_cut_ends_on_a_whole_character(text: str, limit: int, kept: str) -> None:
    from curation.templatetags.text_cut import clip_text

    assert clip_text(text, limit) == (kept, len(text) > limit)


def test_a_cut_text_is_escaped_and_marked_as_cut_off() -> None:
    from django.template import Context, Template

    rendered = Template("{% load text_cut %}{{ text|clip:5 }}|{{ short|clip:5 }}").render(
        Context({"text": "<b>bold</b> words", "short": "<i>"})
    )
    cut, whole = rendered.split("|")
    assert cut.startswith("&lt;b&gt;bo… <small")
    page = lxml_html.fromstring(f"<p>{cut}</p>")
    [mark] = page.find_class("cut-off")
    assert mark.text == "(cut off)" and mark.get("title") == "Cut off: 17 characters in all"
    assert whole == "&lt;i&gt;"


def test_the_answer_is_the_last_assistant_turn() -> None:
    from curation.templatetags.text_cut import answer_text

    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "First"},
        {"role": "user", "content": "Order 7?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "order_status"}}]},
    ]
    assert answer_text(turns) == "order_status(…)"
    assert answer_text(turns[:3]) == "First"
    assert answer_text([{"role": "user", "content": "Hi"}]) == "" and answer_text(None) == ""


def test_the_examples_list_shows_the_answer_and_the_label_beside_the_prompt(client, project, users) -> None:
    long_answer = "Your parcel left our warehouse yesterday. " * 10
    example_create(
        project=project,
        user=users["admin"],
        label="shipping",
        messages=[{"role": "user", "content": "Where is my parcel?"}, {"role": "assistant", "content": long_answer}],
    )
    client.force_login(users["reviewer"])
    page = lxml_html.fromstring(client.get(f"/p/{project.slug}/examples/").content)
    [table] = page.find_class("examples")
    headers = [th.text_content().strip() for th in table.xpath("./thead/tr/th")]
    assert headers[2:5] == ["First user message", "Answer", "Label"]
    [row] = table.xpath("./tbody/tr")
    cells = [td.text_content().strip() for td in row.xpath("./td")]
    assert cells[2] == "Where is my parcel?" and cells[4] == "shipping"
    assert cells[3].startswith("Your parcel left our warehouse yesterday.") and cells[3].endswith("… (cut off)")
    assert len(cells[3]) < 160


def test_dates_follow_the_readers_language(client, project, users) -> None:
    import datetime

    from django.utils import timezone

    from curation.models import UserSettings
    from tests.training.conftest import make_run
    from training.models import Evaluation

    run = make_run(project, users["admin"], result={"train_loss": 1.0})
    when = timezone.make_aware(datetime.datetime(2025, 3, 7, 14, 5))
    Evaluation.objects.create(run=run, status=Evaluation.Status.DONE, total=1, processed=1, finished_at=when)
    client.force_login(users["reviewer"])
    english = client.get(f"/p/{project.slug}/judge/").content.decode()
    assert "03/07/2025 2:05 p.m." in english
    UserSettings.objects.update_or_create(user=users["reviewer"], defaults={"language": "ja"})
    japanese = client.get(f"/p/{project.slug}/judge/").content.decode()
    assert "2025/03/07 14:05" in japanese and "p.m." not in japanese
