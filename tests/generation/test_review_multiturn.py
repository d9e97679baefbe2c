"""Review and ranking on the last assistant turn of a longer conversation with tools: the pages
show the earlier turns as context (their calls and results too), a decision changes only the
model's turn, and the preference pairs keep the whole conversation before it, the whole
answers (tool calls, reasoning) and the tools. The standard export says what it cannot hold."""

from __future__ import annotations

import copy
import json

import pytest

from curation.generation.synthetic import DraftRow, write_drafts
from curation.models import Draft, GenerationJob, PreferencePair
from curation.review.services import draft_approve, drafts_rank, preferences_jsonl, preferences_skipped

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def call(call_id: str, city: str) -> dict:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
    }


CONTEXT = [
    {"role": "system", "content": "You help with the weather."},
    {"role": "user", "content": "Weather in Kyoto?"},
    {"role": "assistant", "content": "", "tool_calls": [call("call_0", "Kyoto")]},
    {"role": "tool", "tool_call_id": "call_0", "content": '{"temp_c": 21}'},
    {"role": "assistant", "content": "It is 21 degrees in Kyoto."},
    {"role": "user", "content": "And Osaka?"},
]
CALLS_OSAKA = {"role": "assistant", "content": "", "reasoning": "Same tool.", "tool_calls": [call("call_1", "Osaka")]}
GUESSES = {"role": "assistant", "content": "Osaka is probably sunny."}


@pytest.fixture
def make_drafts(project, users):
    """Drafts answering CONTEXT (one per answer, candidates of one prompt), the model's turn last."""

    def make(*answers: dict) -> list[Draft]:
        job = GenerationJob.objects.create(project=project, kind="synthetic", created_by=users["reviewer"])
        rows = [
            DraftRow(
                key=f"p1:{n}",
                group="p1",
                candidate=n,
                messages=copy.deepcopy([*CONTEXT, answer]),
                target=len(CONTEXT),
                original=answer["content"],
            )
            for n, answer in enumerate(answers)
        ]
        write_drafts(job, rows)
        drafts = list(Draft.objects.filter(job=job).select_related("example").order_by("id"))
        for draft in drafts:
            draft.example.tools = TOOLS
            draft.example.save(update_fields=["tools"])
        return drafts

    return make


@pytest.fixture
def reviewer(client, users):
    client.force_login(users["reviewer"])
    return client


def test_the_card_shows_the_earlier_turns_their_calls_and_marks_the_models_turn(reviewer, project, make_drafts):
    (draft,) = make_drafts(CALLS_OSAKA)
    page = reviewer.get(f"/p/{project.slug}/drafts/").content.decode()
    for text in ("Weather in Kyoto?", "It is 21 degrees in Kyoto.", "And Osaka?", "Result of call call_0"):
        assert text in page
    assert "get_weather({&quot;city&quot;: &quot;Kyoto&quot;})" in page  # the earlier call, escaped
    chat = page.split('<ol class="chat review-chat">', 1)[1].split("</ol>", 1)[0]
    turns = chat.split('<li class="turn ')[1:]
    assert len(turns) == len(CONTEXT) + 1 and "written by the model" in turns[-1]
    assert all("written by the model" not in turn for turn in turns[:-1])
    assert "Same tool." in turns[-1] and "get_weather({&quot;city&quot;: &quot;Osaka&quot;})" in turns[-1]


def test_editing_the_last_turn_changes_only_it_and_the_pair_keeps_the_conversation(reviewer, project, make_drafts):
    (draft,) = make_drafts(CALLS_OSAKA)
    response = reviewer.post(
        f"/p/{project.slug}/drafts/{draft.example_id}/decide/",
        {"action": "approve", "version": 1, "answer": "Let me check Osaka.", "user": "And Osaka?"},
    )
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.decision == Draft.Decision.EDITED
    assert draft.example.messages[:-1] == CONTEXT  # the earlier turns as they were
    assert draft.example.messages[-1] == {**CALLS_OSAKA, "content": "Let me check Osaka."}  # calls kept
    pair = PreferencePair.objects.get()
    assert pair.prompt == CONTEXT and pair.tools == TOOLS
    assert pair.chosen == {**CALLS_OSAKA, "content": "Let me check Osaka."}
    assert pair.rejected == CALLS_OSAKA


def test_the_ranking_page_shows_the_shared_context_and_ranking_pairs_whole_answers(
    reviewer, project, users, make_drafts
):
    calls, guesses = make_drafts(CALLS_OSAKA, GUESSES)
    page = reviewer.get(f"/p/{project.slug}/drafts/").content.decode()
    prompt = page.split('<ol class="chat compact review-prompt">', 1)[1].split("</ol>", 1)[0]
    assert prompt.count('<li class="turn ') == len(CONTEXT) and "It is 21 degrees in Kyoto." in prompt
    assert "Osaka is probably sunny." not in prompt
    ranking = page.split('<ol id="ranking"', 1)[1]
    assert "get_weather({&quot;city&quot;: &quot;Osaka&quot;})" in ranking and "Osaka is probably sunny." in ranking
    drafts_rank(
        project=project,
        user=users["reviewer"],
        order=[guesses.example_id, calls.example_id],
        versions={guesses.example_id: 1, calls.example_id: 1},
    )
    pair = PreferencePair.objects.get()
    assert (pair.prompt, pair.chosen, pair.rejected, pair.tools) == (CONTEXT, GUESSES, CALLS_OSAKA, TOOLS)
    for draft in (calls, guesses):
        draft.example.refresh_from_db()
        assert draft.example.messages[:-1] == CONTEXT


def test_an_api_edit_that_only_touches_the_reasoning_is_a_pair_too(project, users, make_drafts):
    (draft,) = make_drafts(CALLS_OSAKA)
    messages = [*CONTEXT, {**CALLS_OSAKA, "reasoning": "Osaka is another city: call the tool again."}]
    draft_approve(draft=draft, user=users["reviewer"], version=1, messages=messages)
    pair = PreferencePair.objects.get()
    assert pair.chosen["reasoning"].startswith("Osaka is another city") and pair.rejected == CALLS_OSAKA


def test_exports_keep_tool_calls_or_say_that_plain_text_cannot(reviewer, project, users, make_drafts):
    calls, guesses = make_drafts(CALLS_OSAKA, GUESSES)
    versions = {calls.example_id: 1, guesses.example_id: 1}
    drafts_rank(
        project=project, user=users["reviewer"], order=[calls.example_id, guesses.example_id], versions=versions
    )
    (record,) = [json.loads(line) for line in preferences_jsonl(project)]
    assert record == {"prompt": CONTEXT, "chosen": [CALLS_OSAKA], "rejected": [GUESSES], "tools": TOOLS}
    assert list(preferences_jsonl(project, format="standard")) == []
    assert preferences_skipped(project, format="standard") == {"tool calls": 1}
    assert preferences_skipped(project, format="conversational") == {}
    response = reviewer.get(f"/p/{project.slug}/preferences/export/?format=standard")
    assert response["X-Shikomi-Skipped"] == "tool calls (1)" and b"".join(response.streaming_content) == b""
    page = reviewer.get(f"/p/{project.slug}/preferences/").content.decode()
    assert 'data-format="standard">This format cannot hold every pair; left out: tool calls (1)' in page
    assert 'data-format="conversational"' not in page
    api = reviewer.get(f"/api/projects/{project.slug}/preference-pairs/export/?format=standard")
    assert api["X-Shikomi-Skipped"] == "tool calls (1)"
    listed = reviewer.get(f"/api/projects/{project.slug}/preference-pairs/").json()["results"][0]
    assert (listed["chosen"], listed["tools"]) == (CALLS_OSAKA, TOOLS)
