"""The round trip of docs/data-model.md: for every export format, import -> export -> import
gives back the same examples, field by field (messages, tools, label, split, metadata), for
every example the format can hold; the ones it cannot hold are left out of the file and
reported, per reason, before the download starts.

The corpus holds tool calls, parallel calls, reasoning, turn weights, names, Japanese,
several turns, metadata, labels and splits. The same test runs over the tool-call data in
../shared/data/toolcalls/ when it is there.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from curation import formats
from curation.core.services import example_create
from curation.formats.rows import Row
from curation.io.exports import example_export
from curation.io.imports import example_import_path
from curation.models import Example, ImportJob, Label, Project, RuleRun, WeakLabel

pytestmark = pytest.mark.django_db

SHARED_TOOLCALLS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "toolcalls"

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "都市名"}},
            "required": ["city"],
        },
    },
}
TRACK = {
    "type": "function",
    "function": {
        "name": "track_parcel",
        "description": "Where a parcel is",
        "parameters": {"type": "object", "properties": {"number": {"type": "integer"}}, "required": ["number"]},
    },
}
SYSTEM = {"role": "system", "content": "あなたは丁寧なサポート担当です。"}


def user(text: str, **keys: Any) -> dict[str, Any]:
    return {"role": "user", "content": text, **keys}


def assistant(text: str, **keys: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": text, **keys}


def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


def result(call_id: str, text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


# name -> (messages, tools, label, split, metadata)
CORPUS: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]], str | None, str, dict[str, Any]]] = {
    "tool call with reasoning": (
        [
            SYSTEM,
            user("京都の天気は？"),
            assistant(
                "",
                reasoning="The user wants the weather in Kyoto; call get_weather.",
                tool_calls=[call("call_0", "get_weather", {"city": "京都"})],
            ),
            result("call_0", '{"temp": 21, "sky": "晴れ"}'),
            assistant("京都は晴れ、21度です。"),
        ],
        [WEATHER],
        "billing",
        "train",
        {"source": "web", "言語": "ja", "nested": {"n": [1, 2.5, None, True]}},
    ),
    "parallel calls": (
        [
            user("Weather in Kyoto and Osaka, and where is parcel 42?"),
            assistant(
                "Let me check.",
                tool_calls=[
                    call("call_0", "get_weather", {"city": "Kyoto"}),
                    call("call_1", "get_weather", {"city": "Osaka"}),
                    call("call_2", "track_parcel", {"number": 42}),
                ],
            ),
            result("call_0", "sunny"),
            result("call_1", "rain"),
            result("call_2", "in transit"),
            assistant("Kyoto is sunny, Osaka rainy; parcel 42 is in transit."),
        ],
        [WEATHER, TRACK],
        None,
        "validation",
        {},
    ),
    "reasoning": (
        [user("2 + 3 × 4 は？"), assistant("14 です。", reasoning="掛け算が先: 3 × 4 = 12、12 + 2 = 14。")],
        [],
        None,
        "test",
        {"difficulty": "easy"},
    ),
    "turn weights and names": (
        [
            user("Hi, I'm Taro.", name="taro"),
            assistant("Hello!", weight=0),
            user("Change my address, please."),
            assistant("Done: your address is updated.", weight=1),
        ],
        [],
        "shipping",
        "train",
        {"ticket": "T-7"},
    ),
    "several turns, Japanese": (
        [
            SYSTEM,
            user("請求書を再発行できますか？"),
            assistant("はい、すぐにお送りします。"),
            user("ありがとう。メールでお願いします。"),
            assistant("承知しました。「メール」でお送りします。"),
        ],
        [],
        "billing",
        "unassigned",
        {"channel": "chat"},
    ),
    "one turn": (
        [user('Where is my parcel? "Quoted", and\na new line'), assistant("It left the depot today.")],
        [],
        "shipping",
        "validation",
        {"ticket": "T-1"},
    ),
    "system and one turn": (
        [SYSTEM, user("=SUM(A1:A2) を説明して"), assistant("-1 を足す式ではありません。")],
        [],
        None,
        "train",
        {},
    ),
    "instruction and input": (
        [user("次の文を英語に翻訳してください。\n\n猫が好きです。"), assistant("I like cats.")],
        [],
        "billing",
        "test",
        {"task": "translation"},
    ),
    "system and a reply, no user turn": (
        [SYSTEM, assistant("ご用件をどうぞ。")],
        [],
        None,
        "unassigned",
        {},
    ),
}

# What the plain-turn formats must report (other formats may hold more, never less).
PLAIN_TURN_SKIPS = {
    "tool call with reasoning": "tools",
    "parallel calls": "tools",
    "reasoning": "reasoning",
    "turn weights and names": "turn weights",
    "system and a reply, no user turn": "no user turn",
}
EXPECTED_SKIPS = {
    "alpaca": PLAIN_TURN_SKIPS,
    "prompt_completion": {
        **PLAIN_TURN_SKIPS,
        "several turns, Japanese": "system prompt",
        "system and one turn": "system prompt",
    },
    "csv": {**PLAIN_TURN_SKIPS, "several turns, Japanese": "several turns"},
    "tsv": {**PLAIN_TURN_SKIPS, "several turns, Japanese": "several turns"},
    "openai": {},
    "parquet": {},
}

# (export format, import format, with Shikomi fields)
ROUND_TRIPS = [
    ("openai", "openai", True),
    ("sharegpt", "sharegpt", True),
    ("parquet", "hf", False),
    ("parquet", "hf", True),
    ("alpaca", "alpaca", True),
    ("prompt_completion", "prompt_completion", True),
    ("csv", "csv", True),
    ("tsv", "tsv", True),
]
FIELDS = ("messages", "tools", "label", "split", "metadata")


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="roundtrip", password="x" * 12)


def make_project(
    slug: str, kind: str = Project.Kind.CHAT, labels: tuple[str, ...] = ("billing", "shipping")
) -> Project:
    project = Project.objects.create(name=slug, slug=slug, kind=kind)
    for name in labels:
        Label.objects.create(project=project, name=name)
    return project


def fields(example: Example) -> dict[str, Any]:
    out = {
        "messages": example.messages,
        "tools": example.tools,
        "label": example.label.name if example.label else None,
        "split": example.split,
        "metadata": example.metadata,
    }
    if "status" in {f.name for f in dataclasses.fields(Row)}:
        out["status"] = example.status  # once imports keep a Shikomi export's status
    return out


def examples(project: Project) -> list[Example]:
    return list(Example.objects.filter(project=project).select_related("label").order_by("pk"))


def export_to(tmp_path: Path, project: Project, format: str, shikomi_fields: bool) -> tuple[Path, dict[str, int]]:
    export = example_export(project=project, status="any", format=format, shikomi_fields=shikomi_fields)
    skipped = dict(export.skipped)  # known before a byte is read
    path = tmp_path / export.filename
    with open(path, "wb") as f:
        for chunk in export.chunks:
            f.write(chunk)
    return path, skipped


def import_into(project: Project, owner: Any, path: Path, format: str, **options: Any) -> ImportJob:
    return example_import_path(project=project, user=owner, path=path, format=format, options=options or None)


def differences(original: list[Example], copy: list[Example], names: list[str]) -> list[str]:
    """Every field that differs, named by example and field."""
    if len(original) != len(copy):
        return [f"{len(copy)} examples came back, expected {len(original)}"]
    found = []
    for name, a, b in zip(names, original, copy, strict=True):
        before, after = fields(a), fields(b)
        for key in before:
            if before[key] != after[key]:
                found.append(f"{name}: {key}: {before[key]!r} != {after[key]!r}")
    return found


def round_trip(tmp_path: Path, source: Project, owner: Any, export_format: str, import_format: str, shikomi: bool):
    """(the examples it holds, their copies, their names, what was skipped and why)."""
    writer = formats.export_format(export_format)
    classification = source.kind == Project.Kind.CLASSIFICATION
    originals = examples(source)
    reasons = {
        e.pk: writer.cannot_hold(formats.ExportRow(e.messages, tools=e.tools), classification=classification)
        for e in originals
    }
    path, skipped = export_to(tmp_path, source, export_format, shikomi)
    assert skipped == dict(Counter(r for r in reasons.values() if r is not None))
    held = [e for e in originals if reasons[e.pk] is None]
    target = make_project(
        f"copy-{export_format}-{Project.objects.count()}",
        source.kind,
        tuple(source.labels.values_list("name", flat=True)),
    )
    job = import_into(target, owner, path, import_format)
    assert job.status == ImportJob.Status.SUCCEEDED, (job.error, (job.report or {}).get("errors"))
    return held, examples(target), reasons


# The example whose label was accepted from rules (held by every format).
RULE_LABELED = "one turn"


@pytest.fixture
def corpus(owner) -> tuple[Project, dict[int, str]]:
    project = make_project("lossless")
    names = {}
    for name, (messages, tools, label, split, metadata) in CORPUS.items():
        example = example_create(
            project=project, user=owner, messages=messages, tools=tools, label=label, split=split, metadata=metadata
        )
        names[example.pk] = name
    Example.objects.filter(project=project, split="validation").update(status=Example.Status.APPROVED)
    # A label accepted from rules: an export with Shikomi fields says so (label_source), and the
    # import takes it back as a person's label, the same label.
    ruled = Example.objects.get(project=project, messages=CORPUS[RULE_LABELED][0])
    run = RuleRun.objects.create(project=project, number=4, status=RuleRun.Status.DONE)
    weak = WeakLabel.objects.create(
        run=run, example=ruled, label=ruled.label, confidence=0.91, accepted_from=WeakLabel.Source.LABEL_MODEL
    )
    Example.objects.filter(pk=ruled.pk).update(weak_label=weak)
    return project, names


@pytest.mark.parametrize(("export_format", "import_format", "shikomi"), ROUND_TRIPS)
def test_every_format_gives_back_the_examples_it_can_hold(
    tmp_path, owner, corpus, export_format, import_format, shikomi
):
    source, names = corpus

    held, copy, reasons = round_trip(tmp_path, source, owner, export_format, import_format, shikomi)

    skipped = {names[pk]: reason for pk, reason in reasons.items() if reason is not None}
    expected = EXPECTED_SKIPS.get(export_format)
    if expected is not None:
        assert skipped == expected, f"{export_format} skips {skipped}"
    problems = differences(held, copy, [names[e.pk] for e in held])
    if not shikomi:  # without Shikomi fields the status is the import's own
        problems = [p for p in problems if ": status: " not in p]
    assert not problems, f"{export_format} -> {import_format}:\n" + "\n".join(problems)
    assert RULE_LABELED in [names[e.pk] for e in held]
    assert not any(e.weak_label_id for e in copy)  # imported labels are a person's


def test_a_classification_project_round_trips_in_every_format(tmp_path, owner):
    source = make_project("lossless-tickets", Project.Kind.CLASSIFICATION)
    texts = [
        ([user("カードが使えません")], "billing", "train", {"from": "mail"}),
        ([user('Parcel "lost",\nplease help')], "shipping", "test", {}),
        ([user("=1+1 is not a question")], None, "unassigned", {"n": 3}),
        ([SYSTEM, user("請求書の件です")], "billing", "validation", {}),
    ]
    for messages, label, split, metadata in texts:
        example_create(project=source, user=owner, messages=messages, label=label, split=split, metadata=metadata)

    for export_format, import_format, shikomi in ROUND_TRIPS:
        held, copy, reasons = round_trip(tmp_path, source, owner, export_format, import_format, shikomi)

        problems = differences(held, copy, [str(e.pk) for e in held])
        if not shikomi:
            problems = [p for p in problems if ": status: " not in p]
        assert not problems, f"{export_format} -> {import_format}:\n" + "\n".join(problems)
        if export_format in ("csv", "tsv", "prompt_completion"):
            assert list(reasons.values()).count(None) == 3  # the system prompt does not fit


def test_the_skipped_examples_are_counted_before_the_download_starts(corpus, django_assert_max_num_queries):
    source, _names = corpus

    with django_assert_max_num_queries(3):
        export = example_export(project=source, status="any", format="alpaca")

    assert export.skipped == {"tools": 2, "reasoning": 1, "turn weights": 1, "no user turn": 1}
    records = json.loads(b"".join(export.chunks))
    assert len(records) == len(CORPUS) - 5
    assert all(r["instruction"].strip() and r["output"].strip() for r in records)  # never an empty field
    by_output = {r["output"]: r for r in records}
    assert by_output["I like cats."]["instruction"] == "次の文を英語に翻訳してください。"
    assert by_output["I like cats."]["input"] == "猫が好きです。"  # the input is its own field again


@pytest.mark.skipif(not SHARED_TOOLCALLS.is_dir(), reason="../shared/data/toolcalls is not there")
@pytest.mark.parametrize(("export_format", "import_format", "shikomi"), ROUND_TRIPS)
def test_the_shared_tool_call_data_round_trips(tmp_path, owner, export_format, import_format, shikomi):
    source = make_project("shared-toolcalls", labels=())
    for path in sorted(SHARED_TOOLCALLS.glob("*.json")):
        job = import_into(source, owner, path, "sharegpt")
        assert job.status == ImportJob.Status.SUCCEEDED, (path.name, job.error, (job.report or {}).get("errors"))
    assert Example.objects.filter(project=source).exists()

    held, copy, _reasons = round_trip(tmp_path, source, owner, export_format, import_format, shikomi)

    problems = differences(held, copy, [f"example {i + 1}" for i in range(len(held))])
    if not shikomi:
        problems = [p for p in problems if ": status: " not in p]
    assert not problems, f"{export_format} -> {import_format}: {len(problems)} differences\n" + "\n".join(problems[:20])
