"""The compare page says what each evaluation's BLEU counted, so scores on different scales never
pass for one figure."""

from __future__ import annotations

from tests.training.conftest import make_run
from tests.training.test_evaluation_pages import evaluation_of, url
from training.evaluation import metrics
from training.models import Evaluation


def scored_on(run, tokenize: str) -> Evaluation:
    return evaluation_of(run, config={"max_new_tokens": 64, "scoring": metrics.scale(tokenize)})


def test_runs_scored_on_one_scale_name_it_in_the_bleu_header(client, project, users):
    scored_on(make_run(project, users["admin"], number=1), "char")
    scored_on(make_run(project, users["admin"], number=2), "char")
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_compare"))
    assert response.context["columns"][0] == "BLEU on characters"
    assert not response.context["bleu_mixed"]
    content = response.content.decode()
    assert 'id="compare-bleu-scales"' not in content
    assert [row.values[0] for row in response.context["runs"]] == ["12.0", "12.0"]


def test_runs_scored_on_different_scales_name_the_scale_of_each_figure_and_warn(client, project, users):
    scored_on(make_run(project, users["admin"], number=1), "13a")
    scored_on(make_run(project, users["admin"], number=2), "char")
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_compare"))
    assert response.context["columns"][0] == "BLEU (scales differ)"
    cells = {row.evaluation.run.number: row.values[0] for row in response.context["runs"]}
    assert cells == {1: "12.0 on words", 2: "12.0 on characters"}
    # the base rows come from the newest evaluation, run 2's
    assert [values[0] for _name, values in response.context["baselines"]] == [
        "10.0 on characters",
        "11.0 on characters",
    ]
    content = response.content.decode()
    assert 'id="compare-bleu-scales"' in content and "BLEU (scales differ)" in content


def test_an_evaluation_without_a_recorded_scale_counts_as_another_scale(client, project, users):
    scored_on(make_run(project, users["admin"], number=1), "13a")
    evaluation_of(make_run(project, users["admin"], number=2))  # before scales were recorded
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_compare"))
    cells = {row.evaluation.run.number: row.values[0] for row in response.context["runs"]}
    assert cells == {1: "12.0 on words", 2: "12.0, scale unknown"}


def test_the_detail_page_group_tables_name_the_evaluation_scale(client, project, users):
    evaluation = scored_on(make_run(project, users["admin"]), "char")
    evaluation.by_label = {"billing": {"tuned": {"bleu": 3.0, "chrf": 4.0}}}
    evaluation.save()
    client.force_login(users["annotator"])
    response = client.get(url(project, "evaluation_detail", evaluation.pk))
    tables = response.context["group_tables"]
    assert tables and tables[0][1][0] == "BLEU on characters"
