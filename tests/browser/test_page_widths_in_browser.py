"""No page is wider than the window: every project page a person can open by a plain GET, at
768, 1366 and 1920 px, in English and in Japanese, on a project with awkward content (long
labels, a URL and a 200-character word, Japanese text, a conversation with a tool call, a
training run and its evaluation). Measured as the browser sees it:
``document.documentElement.scrollWidth <= window.innerWidth``.

One browser context per language; each page is loaded once, its folded parts (``<details>``)
opened, and the window resized around it.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

from curation.core.services import example_create, user_language_set
from curation.labeling import services as labeling
from curation.models import Example, GenerationJob, Label, LabelingRule, Project
from curation.quality.scanning import quality_scan_execute
from curation.quality.services import quality_scan_create
from tests.browser.conftest import sign_in
from tests.curation.test_chat_editor_post import WEATHER
from tests.training.conftest import make_run
from tests.training.test_evaluation_pages import evaluation_of, sample_of
from training.evaluation.judging import comparisons_prepare

pytestmark = pytest.mark.browser
User = get_user_model()

WIDTHS = (768, 1366, 1920)
LONG_WORD = "Donaudampfschifffahrtsgesellschaftskapitän" * 5  # 210 characters, no break
LONG_URL = "https://shop.example.com/orders/track?id=" + "0123456789abcdef" * 12
LONG_LABEL = "refunds-returns-and-exchanges-for-orders-shipped-abroad"
JA_LABEL = "海外発送の注文の返品と交換についての問い合わせ"
JA_TEXT = "注文した豆がまだ届きません。追跡番号を確認したところ、配達済みになっていますが、郵便受けにもありません。" * 3
TOOL_CALL = [
    {"role": "system", "content": "You are Kumo Coffee's support assistant. Answer briefly and politely."},
    {"role": "user", "content": f"Where is my parcel? The tracking link is {LONG_URL}"},
    {
        "role": "assistant",
        "content": "",
        "reasoning": "The customer asks about the weather at the destination; call get_weather.",
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "' + LONG_WORD + '"}'},
            }
        ],
    },
    {"role": "tool", "content": '{"sky": "sunny", "note": "' + LONG_WORD + '"}', "tool_call_id": "call_0"},
    {"role": "assistant", "content": f"Your parcel left our roastery; follow it at {LONG_URL} ({LONG_WORD})."},
]

# Pages other parts of the work add; visited when their URL exists.
OPTIONAL = ("example_review_queue", "project_settings", "project_members")
OPTIONAL_OUTSIDE = ("project_new",)


def _content(project: Project) -> dict[str, int]:
    """Awkward content on top of the demo project; the ids of the rows the pages need."""
    admin = User.objects.get(username="demo-admin")
    Label.objects.create(project=project, name=LONG_LABEL, colour="#0f766e")
    Label.objects.create(project=project, name=JA_LABEL, colour="#7c3aed")
    long = example_create(
        project=project,
        user=admin,
        messages=[{"role": "user", "content": f"{LONG_WORD} {LONG_URL}"}, {"role": "assistant", "content": LONG_WORD}],
        label=LONG_LABEL,
        split="train",
    )
    japanese = example_create(
        project=project,
        user=admin,
        messages=[{"role": "user", "content": JA_TEXT}, {"role": "assistant", "content": JA_TEXT}],
        label=JA_LABEL,
        split="test",
    )
    calling = example_create(project=project, user=admin, messages=TOOL_CALL, tools=[WEATHER], split="train")
    # A disagreement on the long example.
    project.annotations_per_example = 2
    project.save(update_fields=["annotations_per_example"])
    for username, label in (("demo-annotator", LONG_LABEL), ("demo-reviewer", JA_LABEL)):
        example = Example.objects.get(pk=long.pk)
        user = User.objects.get(username=username)
        labeling.annotation_submit(example=example, user=user, based_on_version=example.version, label=label)
    # A training run with an evaluation, and a finished one waiting for its evaluation.
    run = make_run(project, admin, number=1, result={"final_train_loss": 1.0, "final_val_loss": 1.25})
    evaluation = evaluation_of(run)
    sample_of(evaluation, japanese, label=JA_LABEL, source="human", prompt=JA_TEXT, tuned=JA_TEXT)
    sample_of(evaluation, long, label=LONG_LABEL, source="human", prompt=LONG_WORD, tuned=f"{LONG_URL} {LONG_WORD}")
    comparisons_prepare(evaluation)
    make_run(project, admin, number=2)
    quality_scan_execute(scan=quality_scan_create(project=project, user=admin))
    return {
        "long": long.pk,
        "japanese": japanese.pk,
        "calling": calling.pk,
        "run": run.pk,
        "evaluation": evaluation.pk,
        "rule": LabelingRule.objects.filter(project=project).values_list("pk", flat=True).first(),
        "job": GenerationJob.objects.filter(project=project).values_list("pk", flat=True).first(),
    }


def _pages(project: Project, ids: dict[str, int]) -> list[str]:
    slug = project.slug
    plain = [
        "project_detail",
        "example_list",
        "label_queue",
        "disagreement_list",
        "review_queue",
        "preference_list",
        "rule_list",
        "rule_new",
        "quality",
        "quality_duplicates",
        "quality_leakage",
        "quality_pii",
        "quality_augment",
        "generate_home",
        "generate_job_new",
        "generate_template_new",
        "connection_list",
        "connection_new",
        "run_list",
        "run_new",
        "run_compare",
        "evaluation_compare",
        "judge_home",
        "judge_next",
        "import_upload",
        "export",
        "splits",
    ]
    urls = [reverse(name, args=[slug]) for name in plain]
    urls += [
        reverse("example_detail", args=[slug, ids["long"]]),
        reverse("example_detail", args=[slug, ids["japanese"]]),
        reverse("example_detail", args=[slug, ids["calling"]]),
        reverse("example_history", args=[slug, ids["long"]]),
        reverse("disagreement_detail", args=[slug, ids["long"]]),
        reverse("run_detail", args=[slug, ids["run"]]),
        reverse("evaluation_detail", args=[slug, ids["evaluation"]]),
        reverse("evaluation_samples", args=[slug, ids["evaluation"]]),
        reverse("example_list", args=[slug]) + "?q=" + "注文",
    ]
    if ids["rule"]:
        urls.append(reverse("rule_edit", args=[slug, ids["rule"]]))
    if ids["job"]:
        urls.append(reverse("generate_job", args=[slug, ids["job"]]))
    for name in OPTIONAL:
        try:
            urls.append(reverse(name, args=[slug]))
        except NoReverseMatch:
            pass
    for name in OPTIONAL_OUTSIDE:
        try:
            urls.append(reverse(name))
        except NoReverseMatch:
            pass
    return ["/", *urls]


# What sticks out, for the failure message: the outermost elements whose right edge passes the window.
WIDEST = """() => {
  const past = (el) => el && el.getBoundingClientRect().right > window.innerWidth + 1;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/ +/).join('.') : '');
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const right = Math.round(el.getBoundingClientRect().right);
    if (past(el) && !past(el.parentElement)) out.push(name(el) + ' right=' + right);
    if (out.length >= 5) break;
  }
  return out;
}"""
OVERFLOW = "() => [document.documentElement.scrollWidth, window.innerWidth]"


def test_no_page_is_wider_than_the_window_in_english_or_japanese(browser, live_server, screenshot):
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    pages = _pages(project, _content(project))
    admin = User.objects.get(username="demo-admin")
    base = live_server.url
    too_wide: list[str] = []
    for language in ("en", "ja"):
        user_language_set(user=admin, language=language)
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, base, "demo-admin")
        for url in pages:
            response = page.goto(base + url)
            if response is None or not response.ok:
                too_wide.append(f"{language} {url}: answered {response.status if response else 'nothing'}")
                continue
            assert page.locator("html").get_attribute("lang") == language
            page.evaluate("() => document.querySelectorAll('main details').forEach((d) => { d.open = true; })")
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                scroll, inner = page.evaluate(OVERFLOW)
                if scroll > inner:
                    too_wide.append(f"{language} {width}px {url}: {scroll} > {inner} {page.evaluate(WIDEST)}")
                    screenshot(page, f"too-wide-{language}-{width}-{url.strip('/').replace('/', '-') or 'home'}")
            page.set_viewport_size({"width": WIDTHS[0], "height": 900})
        page.goto(base + reverse("project_detail", args=[project.slug]))
        screenshot(page, f"dashboard-{language}-768")
        page.goto(base + reverse("example_detail", args=[project.slug, Example.objects.order_by("-pk")[0].pk]))
        screenshot(page, f"tool-call-{language}-768")
        context.close()
    assert not too_wide, "\n".join(too_wide)


def test_the_project_menu_wraps_whole_entries_in_japanese(browser, live_server, screenshot):
    call_command("load_demo")
    project = Project.objects.get(slug="kumo-support")
    admin = User.objects.get(username="demo-admin")
    base = live_server.url
    for language in ("en", "ja"):
        user_language_set(user=admin, language=language)
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
        page = context.new_page()
        sign_in(page, base, "demo-admin")
        page.goto(base + reverse("label_queue", args=[project.slug]))
        entries = page.locator(".project-nav a")
        assert entries.count() == 11  # an admin sees the whole menu
        assert (
            page.locator(".project-nav a[aria-current]")
            .inner_text()
            .startswith("Label" if language == "en" else "ラベル付け")
        )
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            # Each entry stays on one line (its title never broken mid-word), inside the window.
            lines = page.evaluate(
                "() => [...document.querySelectorAll('.project-nav a')].map(a => [a.getClientRects().length,"
                " a.getBoundingClientRect().height, a.getBoundingClientRect().right])"
            )
            tallest = min(height for _, height, _ in lines) * 1.5
            assert all(rects == 1 and height <= tallest for rects, height, _ in lines), (language, width, lines)
            assert all(right <= width for _, _, right in lines), (language, width, lines)
        screenshot(page, f"menu-{language}-768")
        context.close()
