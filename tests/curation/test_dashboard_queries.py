"""The dashboard asks the database a fixed number of questions however many examples and
annotations there are, reads its counts from one grouped query, and computes agreement again
only when an answer it depends on changed."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation.core.services import content_hash, example_create
from curation.labeling import services as labeling
from curation.models import Annotation, Example, Label, RuleRun, WeakLabel
from curation.workspace.dashboard import annotator_progress, attention, class_balance, dashboard
from curation.workspace.selectors import example_tally, project_counts
from tests.conftest import PASSWORD


def chat(i: int) -> list[dict]:
    return [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]


def examples(project, users, n: int, start: int = 0) -> list[Example]:
    return [example_create(project=project, user=users["admin"], messages=chat(start + i)) for i in range(n)]


def answer(examples_: list[Example], user, label: str) -> None:
    for example in examples_:
        example.refresh_from_db()
        labeling.annotation_submit(example=example, user=user, based_on_version=example.version, label=label)


@pytest.fixture
def two_annotators(project, users):
    project.annotations_per_example = 2
    project.save()
    return users["annotator"], users["reviewer"]


def dashboard_queries(project) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        dashboard(project=project)
    return [q["sql"] for q in queries.captured_queries]


def test_the_number_of_queries_does_not_grow_with_examples_or_annotations(project, users, two_annotators):
    annie, rhea = two_annotators
    few = examples(project, users, 3)
    answer(few, annie, "billing")
    answer(few, rhea, "shipping")
    small = dashboard_queries(project)
    many = examples(project, users, 40, start=3)
    answer(many, annie, "billing")
    answer(many[:25], rhea, "billing")
    answer(many[25:], rhea, "shipping")
    extra = Label.objects.create(project=project, name="returns")
    Example.objects.filter(pk__in=[e.pk for e in many[:5]]).update(label=extra, split="test", status="approved")
    large = dashboard_queries(project)
    assert len(large) <= len(small) <= 8
    assert len(dashboard_queries(project)) <= 7  # the agreement now comes from the cache


def test_the_project_page_stays_within_a_fixed_number_of_queries(
    client, project, users, two_annotators, django_assert_max_num_queries
):
    annie, rhea = two_annotators
    batch = examples(project, users, 30)
    answer(batch, annie, "billing")
    answer(batch, rhea, "shipping")
    client.login(username="adam", password=PASSWORD)
    client.get(f"/p/{project.slug}/")
    with django_assert_max_num_queries(30):
        assert client.get(f"/p/{project.slug}/").status_code == 200


def test_counts_from_the_tally_match_counting_each_way_by_itself(project, users):
    """Every combination of status, source, split, label, and label from the rules."""
    run = RuleRun.objects.create(project=project, number=1)
    labels = [*Label.objects.filter(project=project), None]
    rows = []
    for i in range(60):
        messages = chat(i)
        rows.append(
            Example(
                project=project,
                messages=messages,
                content_hash=content_hash(messages),
                status=Example.Status.values[i % 4],
                source=Example.Source.values[i % 5],
                split=Example.Split.values[i % 3],
                label=labels[i % 3],
            )
        )
    created = Example.objects.bulk_create(rows)
    for example in created[::4]:
        if example.label_id:
            weak = WeakLabel.objects.create(run=run, example=example, label=example.label)
            Example.objects.filter(pk=example.pk).update(weak_label=weak)
    base = Example.objects.filter(project=project)

    counts = project_counts(project=project)
    for field, choices in (("status", Example.Status), ("source", Example.Source), ("split", Example.Split)):
        found = Counter(base.values_list(field, flat=True))
        assert counts[field] == [(label, found[value]) for value, label in choices.choices]
    by_label = Counter(base.values_list("label__name", flat=True))
    assert counts["label"] == [
        ("billing", by_label["billing"]),
        ("shipping", by_label["shipping"]),
        ("—", by_label[None]),
    ]
    rules = base.filter(label__isnull=False, weak_label__isnull=False).count()
    person = base.filter(label__isnull=False, weak_label__isnull=True).count()
    assert rules > 0 and [n for _name, n in counts["label_source"]] == [person, rules, by_label[None]]

    balance = dict(class_balance(project=project))
    for label in ("billing", "shipping"):
        assert balance[label] == dict(Counter(base.filter(label__name=label).values_list("split", flat=True)))
    assert balance["—"] == dict(Counter(base.filter(label__isnull=True).values_list("split", flat=True)))

    waiting = attention(project=project)
    assert waiting == attention(project=project, tally=example_tally(project=project))
    assert waiting["needs_review"] == base.filter(status=Example.Status.NEEDS_REVIEW).count()
    assert waiting["drafts"] == base.filter(status=Example.Status.DRAFT, source=Example.Source.SYNTHETIC).count()
    assert waiting["unlabelled"] == by_label[None]
    board = dashboard(project=project)
    assert board["counts"] == counts and board["total"] == 60


def agreement(project):
    return dashboard(project=project)["agreement"]


def test_agreement_is_computed_again_when_an_answer_changes(project, users, two_annotators):
    annie, rhea = two_annotators
    batch = examples(project, users, 6)
    answer(batch, annie, "billing")
    answer(batch[:3], rhea, "billing")
    answer(batch[3:], rhea, "shipping")
    before = agreement(project)
    assert before["units"] == 6 and before["pairs"][0]["units"] == 6

    # A new answer from a third person.
    answer(batch[:3], users["admin"], "billing")
    assert agreement(project)["units"] == 6 and len(agreement(project)["pairs"]) == 3

    # A changed answer: rhea now agrees everywhere.
    answer(batch[3:], rhea, "billing")
    assert {p["kappa"] for p in agreement(project)["pairs"] if {p["a"], p["b"]} == {"annie", "rhea"}} == {1.0}

    # Answers relabelled in the database without saving each (no updated_at change), as
    # merging one label into another may do.
    Annotation.objects.filter(annotator=annie, example__in=batch[:3]).update(label=Label.objects.get(name="shipping"))
    kappas = {p["kappa"] for p in agreement(project)["pairs"] if {p["a"], p["b"]} == {"annie", "rhea"}}
    assert kappas == {0.0}

    # A renamed label.
    Label.objects.filter(project=project, name="shipping").update(name="refunds")
    assert "refunds" in {row["label"] for row in agreement(project)["per_label"]}

    # Answers gone with their example.
    batch[0].delete()
    assert agreement(project)["units"] == 5

    # An answer undone: adam keeps one answer, too few to pair.
    def pairs() -> dict[frozenset, int]:
        return {frozenset((p["a"], p["b"])): p["units"] for p in agreement(project)["pairs"]}

    assert pairs()[frozenset(("annie", "adam"))] == 2
    labeling.annotation_undo(project=project, user=users["admin"])
    assert frozenset(("annie", "adam")) not in pairs()


def test_a_renamed_member_is_shown_by_the_new_name(project, users, two_annotators):
    annie, rhea = two_annotators
    batch = examples(project, users, 3)
    answer(batch, annie, "billing")
    answer(batch, rhea, "shipping")
    assert {agreement(project)["pairs"][0]["a"], agreement(project)["pairs"][0]["b"]} == {"annie", "rhea"}
    rhea.username = "rhea2"
    rhea.save()
    assert "rhea2" in {agreement(project)["pairs"][0]["a"], agreement(project)["pairs"][0]["b"]}


def test_the_agreement_cache_is_read_not_recomputed(project, users, two_annotators):
    annie, rhea = two_annotators
    batch = examples(project, users, 4)
    answer(batch, annie, "billing")
    answer(batch, rhea, "billing")
    first = dashboard_queries(project)
    again = dashboard_queries(project)
    assert len(again) == len(first) - 2  # neither the answers nor the members' names are read again
    assert not any('"curation_annotation"."label_id"' in q and "SUM" not in q for q in again)


def test_progress_counts_every_answer_by_kind(project, users, two_annotators):
    annie, rhea = two_annotators
    batch = examples(project, users, 5)
    answer(batch[:3], annie, "billing")
    labeling.annotation_skip(example=batch[3], user=annie)
    rows = {row["user"]: row for row in annotator_progress(project=project).rows}
    assert (rows["annie"]["submitted"], rows["annie"]["skipped"]) == (3, 1)
    assert rows["rhea"]["submitted"] == 0 and "root" not in rows
