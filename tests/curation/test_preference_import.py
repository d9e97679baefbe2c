"""The preference import format: TRL's conversational and standard shapes and LLaMA-Factory's
ShareGPT ranking layout, as JSON Lines, JSON or Parquet. Each record becomes an example (prompt +
chosen) and a preference pair (origin "import"); the conversational export reads back as the
same pairs; a bad record names its line and field, and nothing of the file is written."""

from __future__ import annotations

import io
import json

import pytest

from curation.io.imports import example_import, import_job_create
from curation.models import Example, ImportJob, PreferencePair, Project
from curation.review.services import preferences_jsonl

pytestmark = pytest.mark.django_db

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def call(call_id: str, city: str) -> dict:
    arguments = json.dumps({"city": city}, ensure_ascii=False)
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


PROMPT = [
    {"role": "system", "content": "You help with the weather."},
    {"role": "user", "content": "Weather in Kyoto?"},
    {"role": "assistant", "content": "", "tool_calls": [call("call_0", "京都")]},
    {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 21}'},
    {"role": "assistant", "content": "It is 21 degrees in Kyoto."},
    {"role": "user", "content": "And Osaka?"},
]
CHOSEN = {"role": "assistant", "content": "", "reasoning": "Same tool.", "tool_calls": [call("call_1", "Osaka")]}
REJECTED = {"role": "assistant", "content": "Osaka is probably sunny."}


def run_import(project, owner, data: bytes, filename: str = "pairs.jsonl", **options) -> ImportJob:
    job = import_job_create(
        project=project, user=owner, fileobj=io.BytesIO(data), filename=filename, format="preference", options=options
    )
    return example_import(job=job)


def jsonl(*records: dict) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def fields(pair: PreferencePair) -> tuple:
    return (pair.prompt, pair.chosen, pair.rejected, pair.tools)


def test_conversational_records_become_examples_and_pairs_with_tools(io_project, io_user):
    record = {"prompt": PROMPT, "chosen": [CHOSEN], "rejected": [REJECTED], "tools": TOOLS}
    job = run_import(
        io_project, io_user, jsonl(record, {**record, "rejected": [{"role": "assistant", "content": "?"}]})
    )
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert (job.rows_created, job.rows_duplicate, job.report["preference_pairs"]) == (1, 1, 2)
    example = Example.objects.get(project=io_project)
    assert example.messages == [*PROMPT, CHOSEN] and example.tools == TOOLS and example.source == "imported"
    first, second = PreferencePair.objects.order_by("id")
    assert fields(first) == (PROMPT, CHOSEN, REJECTED, TOOLS)
    assert first.origin == PreferencePair.Origin.IMPORT and first.created_by == io_user
    # One chosen answer paired with two rejected ones: one example, two pairs, both linked to it.
    assert first.example == second.example == example


def test_the_conversational_export_imports_back_as_the_same_pairs(io_project, io_user):
    source = Project.objects.create(name="Source", slug="pairs-source", kind=Project.Kind.CHAT)
    made = [
        PreferencePair.objects.create(
            project=source, prompt=PROMPT, chosen=CHOSEN, rejected=REJECTED, tools=TOOLS, origin="ranking"
        ),
        PreferencePair.objects.create(
            project=source,
            prompt=[{"role": "user", "content": "Hi 👋"}],
            chosen={"role": "assistant", "content": "Hello!", "reasoning": "Be kind."},
            rejected={"role": "assistant", "content": "What?"},
            origin="edit",
        ),
    ]
    exported = "".join(preferences_jsonl(source)).encode()
    job = run_import(io_project, io_user, exported)
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    back = list(PreferencePair.objects.filter(project=io_project).order_by("id"))
    assert [fields(p) for p in back] == [fields(p) for p in made]
    # And once more: the import's own export is the same file.
    assert "".join(preferences_jsonl(io_project)).encode() == exported


def test_standard_records_and_the_implicit_prompt(io_project, io_user):
    records = [
        {"prompt": "2 + 2?", "chosen": "<think>\nAdd.\n</think>\n\n4.", "rejected": "5."},
        {
            "chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
            "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away."}],
        },
    ]
    job = run_import(io_project, io_user, jsonl(*records))
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    standard, implicit = PreferencePair.objects.order_by("id")
    assert fields(standard) == (
        [{"role": "user", "content": "2 + 2?"}],
        {"role": "assistant", "content": "4.", "reasoning": "Add."},
        {"role": "assistant", "content": "5."},
        [],
    )
    assert fields(implicit)[:3] == (
        [{"role": "user", "content": "Hi"}],
        {"role": "assistant", "content": "Hello!"},
        {"role": "assistant", "content": "Go away."},
    )


def test_sharegpt_ranking_layout_with_a_system_prompt_and_a_function_call(io_project, io_user):
    bare = [tool["function"] for tool in TOOLS]
    records = [
        {
            "conversations": [
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hello."},
                {"from": "human", "value": "Weather in Osaka?"},
            ],
            "system": "Be brief.",
            "tools": json.dumps(bare),
            "chosen": {
                "from": "function_call",
                "value": json.dumps({"name": "get_weather", "arguments": {"city": "Osaka"}}),
            },
            "rejected": {"from": "gpt", "value": "No idea."},
        }
    ]
    data = json.dumps(records, ensure_ascii=False).encode()
    job = run_import(io_project, io_user, data, filename="dpo.json")
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    pair = PreferencePair.objects.get()
    assert pair.prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Weather in Osaka?"},
    ]
    assert pair.chosen == {"role": "assistant", "content": "", "tool_calls": [call("call_0", "Osaka")]}
    assert pair.rejected == {"role": "assistant", "content": "No idea."}
    assert pair.tools == [{"type": "function", "function": f} for f in bare]


def test_a_parquet_file_of_conversational_records(io_project, io_user, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(
        [
            {
                "prompt": [{"role": "user", "content": "Hi"}],
                "chosen": [{"role": "assistant", "content": "Hello!"}],
                "rejected": [{"role": "assistant", "content": "No."}],
                "tools": None,
            },
            {"prompt": PROMPT, "chosen": [CHOSEN], "rejected": [REJECTED], "tools": json.dumps(TOOLS)},
        ]
    )
    path = tmp_path / "pairs.parquet"
    pq.write_table(table, path)
    job = run_import(io_project, io_user, path.read_bytes(), filename="pairs.parquet")
    assert job.status == ImportJob.Status.SUCCEEDED, job.report
    assert [fields(p) for p in PreferencePair.objects.order_by("id")] == [
        (
            [{"role": "user", "content": "Hi"}],
            {"role": "assistant", "content": "Hello!"},
            {"role": "assistant", "content": "No."},
            [],
        ),
        (PROMPT, CHOSEN, REJECTED, TOOLS),
    ]


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        ({"prompt": PROMPT, "chosen": [CHOSEN]}, "rejected", 'no "rejected"'),
        ({"prompt": PROMPT, "chosen": [CHOSEN, REJECTED], "rejected": [REJECTED]}, "chosen", "2 messages"),
        (
            {"prompt": PROMPT, "chosen": [CHOSEN], "rejected": [{"role": "user", "content": "x"}]},
            "rejected",
            'role "user"',
        ),
        ({"prompt": PROMPT, "chosen": [CHOSEN], "rejected": [CHOSEN]}, "rejected", "the same as the chosen"),
        ({"prompt": "Hi", "chosen": "Hello", "rejected": 3}, "rejected", "expected text"),
        ({"chosen": "Hello", "rejected": "No"}, "prompt", 'no "prompt"'),
        ({"prompt": [], "chosen": [CHOSEN], "rejected": [REJECTED]}, "prompt", "the prompt is empty"),
        (
            {
                "prompt": PROMPT,
                "chosen": [CHOSEN],
                "rejected": [
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [{"type": "function", "function": {"name": "get_time", "arguments": "{}"}}],
                    }
                ],
                "tools": TOOLS,
            },
            "rejected.tool_calls",
            'unknown function "get_time"',
        ),
        (
            {
                "conversations": [{"from": "human", "value": "Hi"}],
                "chosen": {"from": "gpt", "value": "Hello"},
                "rejected": {"from": "robot", "value": "No"},
            },
            "rejected.from",
            "robot",
        ),
    ],
)
def test_a_bad_record_names_its_line_and_field_and_nothing_is_written(io_project, io_user, record, field, words):
    good = {"prompt": "Hi", "chosen": "Hello", "rejected": "No"}
    job = run_import(io_project, io_user, jsonl(good, record))
    assert job.status == ImportJob.Status.FAILED
    errors = [e for e in job.report["errors"] if e["line"] == 2]
    assert errors and errors[0]["field"].startswith(field) and words in errors[0]["message"], job.report["errors"]
    assert "line 2" in job.error
    assert not Example.objects.filter(project=io_project).exists()
    assert not PreferencePair.objects.exists()


def test_skipping_bad_rows_keeps_the_good_pairs(io_project, io_user):
    data = jsonl({"prompt": "Hi", "chosen": "Hello", "rejected": "No"}, {"prompt": "Hi", "chosen": "Hello"})
    job = run_import(io_project, io_user, data, skip_bad_rows=True)
    assert job.status == ImportJob.Status.SUCCEEDED and job.report["skipped_lines"] == [2]
    assert PreferencePair.objects.filter(project=io_project).count() == 1


def test_a_column_mapping_is_refused_for_preference_files(io_project, io_user):
    from curation.core.services import InvalidExample

    with pytest.raises(InvalidExample, match="takes no column mapping"):
        run_import(io_project, io_user, jsonl({"prompt": "a", "chosen": "b", "rejected": "c"}), mapping="text=prompt")


def test_the_import_page_offers_preference_files(client, project, users):
    client.force_login(users["admin"])

    page = client.get(f"/p/{project.slug}/import/")

    assert b'value="preference"' in page.content
