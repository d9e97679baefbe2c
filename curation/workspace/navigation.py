"""The project menu on every project page, and the dashboard's "what to do next".

The menu follows the order of the work: Import, Sources, Label, Review, Rules, Quality, Generate,
Train, Evaluate, Export, Settings. An entry is offered only to roles its page accepts: the page's own
``required_access`` (what ``project_view`` checks on the server) decides, so the menu cannot
offer a page that answers 403. The entry of the section a page belongs to is marked, and a few
counts say what waits there; they are computed once per request, and only on pages that draw
the menu (the context processor hands the template a lazy value).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.functional import Promise, SimpleLazyObject
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext_lazy

from curation.core.permissions import Action, role_allows
from curation.labeling.services import COUNT_CAP, queue_remaining
from curation.models import Example, Project
from curation.workspace.dashboard import attention


@dataclass(frozen=True)
class Section:
    key: str
    title: Promise
    links: tuple[str, ...]  # URL names to link to: the first that exists and the role may open
    pages: tuple[str, ...]  # URL name prefixes of the pages that belong to the section


SECTIONS: tuple[Section, ...] = (
    Section("import", gettext_lazy("Import"), ("import_upload",), ("import_",)),
    Section("sources", gettext_lazy("Sources"), ("source_list",), ("source_",)),
    Section("label", pgettext_lazy("verb: start labeling", "Label"), ("label_queue",), ("label_",)),
    Section(
        "review",
        pgettext_lazy("project menu", "Review"),
        ("example_review_queue", "review_queue"),
        ("example_review", "review_", "disagreement_", "preference_"),
    ),
    Section("rules", gettext_lazy("Rules"), ("rule_list",), ("rule_", "weak_")),
    Section("quality", gettext_lazy("Quality"), ("quality",), ("quality",)),
    Section("generate", gettext_lazy("Generate"), ("generate_home",), ("generate_", "connection_")),
    Section("train", gettext_lazy("Train"), ("run_list",), ("run_", "splits")),
    Section(
        "evaluate",
        pgettext_lazy("project menu", "Evaluate"),
        ("judge_home", "evaluation_compare"),
        ("judge_", "evaluation_", "run_evaluate"),
    ),
    Section("export", gettext_lazy("Export"), ("export",), ("export",)),
    Section(
        "settings",
        gettext_lazy("Settings"),
        ("project_settings",),
        ("project_settings", "project_member", "project_label", "project_guidelines"),
    ),
)


@dataclass(frozen=True)
class MenuItem:
    key: str
    title: str
    url: str
    current: str  # "page" on the section's own page, "true" elsewhere in the section, "" outside
    count: int | None = None  # what waits there; None shows nothing
    count_text: str = ""  # the count as shown ("1000+" past the cap)
    description: str = ""  # the count in words, for screen readers and the tooltip


@cache
def required_access(url_name: str) -> str | None:
    """What the page named `url_name` demands of a role (None when no such page exists)."""
    try:
        match = resolve(reverse(url_name, args=["slug"]))
    except (NoReverseMatch, Resolver404):
        return None
    return getattr(match.func, "required_access", None)


def page_allowed(url_name: str, role: str | None) -> bool:
    access = required_access(url_name)
    if access == "authenticated":
        return True
    try:
        return role_allows(role, Action(access))
    except ValueError:  # None (no such page) or a page for another kind of visitor
        return False


def section_of(url_name: str | None, path: str, links: dict[str, str]) -> str:
    """The section a page belongs to: the entry whose link the path lies under, else the
    longest URL name prefix that claims it."""
    best, length = "", 0
    for key, url in links.items():
        if path.startswith(url) and len(url) > length:
            best, length = key, len(url)
    if best:
        return best
    for section in SECTIONS:
        for prefix in section.pages:
            if url_name and url_name.startswith(prefix) and len(prefix) > length:
                best, length = section.key, len(prefix)
    return best


# --- counts ----------------------------------------------------------------------------------

_CACHE = "_shikomi_attention"
# The most queries the menu adds to a page: the attention counts (an aggregate and the
# disagreements) and the person's labeling queue. Tests of a page's query budget add it.
MENU_QUERIES = 3


def remember_attention(request: HttpRequest, counts: dict[str, int]) -> None:
    """Hand the menu counts the page computed already (the dashboard), so they are not counted twice."""
    setattr(request, _CACHE, counts)


def _attention(request: HttpRequest, project: Project) -> dict[str, int]:
    if not hasattr(request, _CACHE):
        remember_attention(request, attention(project=project))
    return getattr(request, _CACHE)


def _review_count(request: HttpRequest, project: Project) -> tuple[int, str]:
    counts = _attention(request, project)
    needs, drafts, disagreements = counts["needs_review"], counts["drafts"], counts["disagreements"]
    words = _("%(review)s, %(drafts)s, %(disagreements)s") % {
        "review": ngettext("%(n)d example needs review", "%(n)d examples need review", needs) % {"n": needs},
        "drafts": ngettext("%(n)d draft waiting", "%(n)d drafts waiting", drafts) % {"n": drafts},
        "disagreements": ngettext("%(n)d disagreement", "%(n)d disagreements", disagreements) % {"n": disagreements},
    }
    return needs + drafts + disagreements, words


def queue_left(request: HttpRequest, project: Project) -> int:
    """How many examples wait for this person (up to COUNT_CAP + 1), counted once per request:
    the menu and the dashboard's next step both show it."""
    cached = getattr(request, "_shikomi_queue_left", None)
    if cached is None or cached[0] != project.pk:
        cached = (project.pk, queue_remaining(project=project, user=request.user))
        request._shikomi_queue_left = cached  # type: ignore[attr-defined]
    return cached[1]


def _label_count(request: HttpRequest, project: Project) -> tuple[int, str]:
    left = queue_left(request, project)
    if left > COUNT_CAP:
        return left, _("More than %(n)d examples left in your queue") % {"n": COUNT_CAP}
    return left, ngettext("%(n)d example left in your queue", "%(n)d examples left in your queue", left) % {"n": left}


COUNTERS: dict[str, Callable[[HttpRequest, Project], tuple[int, str]]] = {
    "label": _label_count,
    "review": _review_count,
}


# --- the menu --------------------------------------------------------------------------------


def project_menu(request: HttpRequest, project: Project, role: str | None) -> list[MenuItem]:
    """The entries this role may use, the current one marked, with what waits in each."""
    links: dict[str, str] = {}
    for section in SECTIONS:
        name = next((n for n in section.links if page_allowed(n, role)), None)
        if name is not None:
            links[section.key] = reverse(name, args=[project.slug])
    match = getattr(request, "resolver_match", None)
    current = section_of(match.url_name if match else None, request.path, links)
    items = []
    for section in SECTIONS:
        if section.key not in links:
            continue
        url = links[section.key]
        marked = "page" if request.path == url else "true" if section.key == current else ""
        count, text, words = None, "", ""
        if section.key in COUNTERS:
            count, words = COUNTERS[section.key](request, project)
            text = f"{COUNT_CAP}+" if count > COUNT_CAP else str(count)
        items.append(MenuItem(section.key, str(section.title), url, marked, count, text, words))
    return items


def menu_context(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``project_menu`` on pages of a project (set by ``project_view``),
    computed only when a template draws it."""

    def build() -> list[MenuItem]:
        project = getattr(request, "project", None)
        if not isinstance(project, Project):
            return []
        return project_menu(request, project, getattr(request, "role", None))

    return {"project_menu": SimpleLazyObject(build)}


# --- what to do next -------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    key: str
    text: str
    url: str


def _training_state(project: Project) -> tuple[bool, Any]:
    """Whether the project has any training run, and its newest finished run with no evaluation."""
    from training.interface import training_state

    return training_state(project)


def _review_url(project: Project, role: str | None) -> str:
    if page_allowed("example_review_queue", role):
        return reverse("example_review_queue", args=[project.slug])
    return reverse("example_list", args=[project.slug]) + "?status=needs_review"


def _queue_words(queue: int) -> str:
    if queue > COUNT_CAP:
        return _("Label: more than %(n)d examples wait for your answer") % {"n": COUNT_CAP}
    return ngettext(
        "Label: %(n)d example waits for your answer", "Label: %(n)d examples wait for your answer", queue
    ) % {"n": queue}


def next_steps(
    *, project: Project, role: str | None, counts: dict[str, int], total: int, queue: int = 0, limit: int = 2
) -> list[Step]:
    """One or two next steps from the project's state, in the order of the work, among those
    the role may take. `counts` are the dashboard's attention counts; `queue` how many examples
    wait for this person's answer."""
    slug = [project.slug]
    can = {action: role_allows(role, action) for action in Action}
    if total == 0:
        if not can[Action.IMPORT]:
            return []
        return [Step("import", _("Import examples to start the project"), reverse("import_upload", args=slug))]
    steps: list[Step] = []

    def offer(key: str, action: Action, text: Callable[[], str], url: Callable[[], str]) -> None:
        if len(steps) < limit and can[action]:
            steps.append(Step(key, text(), url()))

    n = counts.get("unlabelled", 0)
    if n and project.labels.exists():
        offer(
            "label",
            Action.LABEL,
            lambda: (
                ngettext("Label %(n)d example without a label", "Label %(n)d examples without a label", n) % {"n": n}
            ),
            lambda: reverse("label_queue", args=slug),
        )
    elif queue and project.labels.exists():
        offer("label", Action.LABEL, lambda: _queue_words(queue), lambda: reverse("label_queue", args=slug))
    if d := counts.get("disagreements", 0):
        offer(
            "disagreements",
            Action.REVIEW,
            lambda: ngettext("Resolve %(n)d disagreement", "Resolve %(n)d disagreements", d) % {"n": d},
            lambda: reverse("disagreement_list", args=slug),
        )
    if r := counts.get("needs_review", 0):
        offer(
            "review",
            Action.REVIEW,
            lambda: (
                ngettext("Review %(n)d example that needs review", "Review %(n)d examples that need review", r)
                % {"n": r}
            ),
            lambda: _review_url(project, role),
        )
    if len(steps) >= limit:
        return steps
    if not Example.objects.filter(project=project).exclude(split=Example.Split.UNASSIGNED).exists():
        offer(
            "splits",
            Action.MANAGE_PROJECT,
            lambda: _("Split the examples into train, validation and test"),
            lambda: reverse("splits", args=slug),
        )
        return steps
    if len(steps) >= limit or not can[Action.LAUNCH_TRAINING]:
        return steps
    any_run, unevaluated = _training_state(project)
    if not any_run:
        offer("train", Action.LAUNCH_TRAINING, lambda: _("Train a first model"), lambda: reverse("run_new", args=slug))
    elif unevaluated is not None:
        offer(
            "evaluate",
            Action.LAUNCH_TRAINING,
            lambda: _("Evaluate run %(number)d on the test split") % {"number": unevaluated["number"]},
            lambda: reverse("run_detail", args=[project.slug, unevaluated["pk"]]),
        )
    return steps
