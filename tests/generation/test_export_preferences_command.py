"""`manage.py export_preferences`: preference pairs as JSON Lines to a file (written whole or not
at all) or to standard output."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from curation.models import PreferencePair
from curation.review import services as review
from curation.review.services import drafts_rank


@pytest.fixture
def pairs(project, users, drafts) -> list[PreferencePair]:
    """Three pairs from ranking three candidates for one prompt."""
    ranked = drafts(count=1, candidates=3)
    drafts_rank(
        project=project,
        user=users["reviewer"],
        order=[d.example_id for d in ranked],
        versions={d.example_id: d.example.version for d in ranked},
    )
    return list(PreferencePair.objects.order_by("id"))


def test_it_writes_one_line_per_pair_to_the_file(project, pairs, tmp_path):
    target = tmp_path / "pairs.jsonl"
    err = StringIO()

    call_command("export_preferences", "support", output=str(target), stderr=err)

    records = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 3
    assert records[0]["prompt"] == pairs[0].prompt
    assert records[0]["chosen"] == [pairs[0].chosen] == [{"role": "assistant", "content": pairs[0].chosen["content"]}]
    assert "Wrote 3 preference pairs" in err.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]


def test_it_writes_to_standard_output_in_the_standard_format(project, pairs):
    out, err = StringIO(), StringIO()

    call_command("export_preferences", "support", format="standard", stdout=out, stderr=err)

    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["chosen"], r["rejected"]) for r in records] == [
        (p.chosen["content"], p.rejected["content"]) for p in pairs
    ]
    assert all(isinstance(r["prompt"], str) and r["prompt"] for r in records)
    assert "Wrote 3 preference pairs to standard output" in err.getvalue()


def test_a_project_without_pairs_gives_an_empty_file(project, users, tmp_path):
    target = tmp_path / "pairs.jsonl"
    err = StringIO()
    call_command("export_preferences", "support", output=str(target), stderr=err)
    assert target.read_text() == ""
    assert "Wrote 0 preference pairs" in err.getvalue()


def test_an_unknown_project_is_refused(project, tmp_path):
    with pytest.raises(CommandError, match="nosuch"):
        call_command("export_preferences", "nosuch", output=str(tmp_path / "x.jsonl"))
    assert not list(tmp_path.iterdir())


def test_an_unknown_format_is_refused_naming_the_formats(project, pairs, tmp_path):
    with pytest.raises(CommandError, match="conversational, standard"):
        call_command("export_preferences", "support", format="csv", output=str(tmp_path / "x.jsonl"))
    assert not list(tmp_path.iterdir())


def test_a_missing_folder_is_refused(project, pairs, tmp_path):
    with pytest.raises(CommandError, match="no such folder"):
        call_command("export_preferences", "support", output=str(tmp_path / "missing" / "x.jsonl"), stderr=StringIO())


def test_a_failure_half_way_leaves_an_existing_file_as_it_was(project, pairs, tmp_path, monkeypatch):
    target = tmp_path / "pairs.jsonl"
    target.write_text("the previous export\n", encoding="utf-8")
    real = review.preferences_jsonl

    def breaks_after_one_line(project, *, format):
        lines = real(project, format=format)
        yield next(lines)
        raise RuntimeError("database went away")

    monkeypatch.setattr(review, "preferences_jsonl", breaks_after_one_line)

    with pytest.raises(RuntimeError, match="database went away"):
        call_command("export_preferences", "support", output=str(target), stderr=StringIO())

    assert target.read_text(encoding="utf-8") == "the previous export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"], "the temporary file is removed"


def test_the_standard_format_says_on_stderr_which_pairs_it_leaves_out(project, users, tmp_path):

    call = {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    PreferencePair.objects.create(
        project=project,
        prompt=[{"role": "user", "content": "Hi"}],
        chosen={"role": "assistant", "content": "", "tool_calls": [call]},
        rejected={"role": "assistant", "content": "No."},
        origin=PreferencePair.Origin.EDIT,
    )
    err = StringIO()

    call_command(
        "export_preferences", project.slug, "--format", "standard", "-o", str(tmp_path / "p.jsonl"), stderr=err
    )

    assert "Left out 1 pair(s)" in err.getvalue() and "tool calls (1)" in err.getvalue()
