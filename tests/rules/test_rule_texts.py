"""The rule-text store: runs read each example's texts built once, and never stale ones."""

from __future__ import annotations

import numpy as np
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation.core.services import example_create, example_update
from curation.models import Example, RuleRun, WeakLabel
from curation.models.rule_texts import RuleText
from curation.rules import spec as S
from curation.rules import textstore
from curation.rules.engine import Corpus, apply_rules, example_texts, stored_corpus
from curation.rules.services import rule_clean, rule_create, rule_preview, rule_run_execute
from curation.rules.spec import RuleSpec, clean_params
from curation.rules.tasks import rule_run_start
from tests.rules.conftest import chat, write_rules
from tests.rules.test_engine_parity import RULES, _cleaned
from tests.rules.test_engine_parity import _rows as parity_rows


def _run(project, admin) -> dict[str, dict[str, str]]:
    run = rule_run_start(project=project, user=admin)
    run = rule_run_execute(run=RuleRun.objects.get(pk=run.pk))
    assert run.status == RuleRun.Status.DONE, run.error
    return {w.example.first_user_text: w.votes for w in WeakLabel.objects.filter(run=run).select_related("example")}


def test_stored_texts_give_the_same_matrix_as_the_messages():
    rows = parity_rows(seed=5, n=300)
    rules = [_cleaned(r) for r in RULES]
    messages, metadata = [r["messages"] for r in rows], [r["metadata"] for r in rows]
    from_messages = apply_rules(rules, Corpus(messages, metadata))
    stored = stored_corpus([example_texts(m) for m in messages], metadata, list(range(len(rows))))
    np.testing.assert_array_equal(apply_rules(rules, stored), from_messages)


def test_the_store_keeps_folded_texts_and_the_written_form_only_where_folding_changed_it():
    user, assistant = "ＲＥＦＵＮＤ ｶｽﾀﾏｰ", "Sorry."
    texts = example_texts(chat(user, assistant))
    assert texts == ("REFUND カスタマー", "Sorry.", "REFUND カスタマー\nSorry.", user, None, f"{user}\nSorry.")
    corpus = stored_corpus([texts], [{}], [1])
    assert corpus.texts(S.USER) == [user] and corpus.source(("text", S.USER, True)) == ["REFUND カスタマー"]
    # A length rule counts the text as written (folding ｶｽﾀﾏｰ makes it shorter), as before.
    rule = RuleSpec("r", S.LENGTH, 0, S.USER, clean_params(S.LENGTH, {"unit": "chars", "min": len(user)}))
    assert apply_rules([rule], corpus)[0, 0] == 0


def test_a_run_fills_the_store_and_the_next_run_reads_no_messages(corpus, project, users):
    write_rules(project, users["admin"])
    first = _run(project, users["admin"])
    assert RuleText.objects.filter(example__project=project).count() == 12
    with CaptureQueriesContext(connection) as queries:
        chunks = list(textstore.chunks(project))
    assert sum(len(c) for c in chunks) == 12
    assert not [q["sql"] for q in queries if '"messages"' in q["sql"]], "stored texts were built again"
    assert not [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert _run(project, users["admin"]) == first


def test_an_edited_example_is_read_as_it_is_now(corpus, project, users):
    admin = users["admin"]
    write_rules(project, admin)
    before = _run(project, admin)
    assert not before["Hello, nice shop"]
    example = next(e for e in corpus if e.first_user_text == "Hello, nice shop")
    example_update(example=example, user=admin, version=example.version, messages=chat("Hello, where is my parcel?"))
    after = _run(project, admin)
    assert set(after["Hello, where is my parcel?"].values()) == {"shipping"}
    stored = RuleText.objects.get(example=example)
    assert stored.content_hash == Example.objects.get(pk=example.pk).content_hash
    assert stored.user == "Hello, where is my parcel?"


def test_texts_stored_for_other_content_are_never_used(corpus, project, users):
    admin = users["admin"]
    write_rules(project, admin)
    _run(project, admin)
    # As if the example had been changed by a path that left the old texts behind: the hash
    # they were built from is not the example's.
    example = next(e for e in corpus if e.first_user_text == "Hello, nice shop")
    RuleText.objects.filter(example=example).update(content_hash="0" * 64, user="refund my parcel")
    votes = _run(project, admin)
    assert not votes["Hello, nice shop"]
    assert RuleText.objects.get(example=example).user == "Hello, nice shop"


def test_the_preview_shows_the_text_as_written_and_fills_the_store(project, users):
    admin = users["admin"]
    example = example_create(project=project, user=admin, messages=chat("ＲＥＦＵＮＤ please"))
    example_create(project=project, user=admin, messages=chat("Nothing to see"))
    data = rule_clean(
        project=project, name="refund", kind=S.KEYWORDS, params={"keywords": "refund"}, label="billing", target=S.USER
    )
    preview = rule_preview(project=project, rule=data)
    assert preview.hits == 1 and preview.scanned == 2
    assert preview.sample[0]["id"] == example.pk
    assert preview.sample[0]["parts"] == [("ＲＥＦＵＮＤ", True), (" please", False)]
    assert RuleText.objects.filter(example__project=project).count() == 2


def test_a_limited_read_stops_at_the_limit_across_chunks(project, users, monkeypatch):
    admin = users["admin"]
    monkeypatch.setattr(textstore, "CHUNK", 3)
    created = [example_create(project=project, user=admin, messages=chat(f"parcel {i}")).pk for i in range(8)]
    chunks = list(textstore.chunks(project, limit=7))
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [pk for c in chunks for pk in c.corpus.ids] == created[:7]
    assert [len(c) for c in textstore.chunks(project)] == [3, 3, 2]


def test_a_rule_set_runs_on_a_project_whose_store_is_partly_filled(project, users):
    admin = users["admin"]
    rule_create(
        project=project,
        user=admin,
        name="parcel",
        kind=S.KEYWORDS,
        params={"keywords": "parcel"},
        label="shipping",
        target=S.USER,
    )
    for i in range(3):
        example_create(project=project, user=admin, messages=chat(f"parcel {i}"))
    _run(project, admin)
    example_create(project=project, user=admin, messages=chat("my parcel is late"))
    example_create(project=project, user=admin, messages=chat("hello"))
    votes = _run(project, admin)
    assert {text: bool(v) for text, v in votes.items()} == {
        "parcel 0": True,
        "parcel 1": True,
        "parcel 2": True,
        "my parcel is late": True,
        "hello": False,
    }
    assert RuleText.objects.filter(example__project=project).count() == 5
