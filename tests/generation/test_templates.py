"""Prompt templates: placeholders, versions, few-shot blocks."""

from __future__ import annotations

import random

import pytest

from curation.core.services import example_create
from curation.generation import ConfigError
from curation.generation.templates import (
    DEFAULT_TEXT,
    few_shot_block,
    few_shot_pool,
    render,
    template_check,
    template_default,
    template_save,
    templates_current,
)
from curation.models import Example, PromptTemplate


def test_an_unknown_placeholder_is_refused_with_its_line():
    with pytest.raises(ConfigError) as caught:
        template_check("Write a message.\nTopic: {topik}\n")
    assert caught.value.field == "text"
    assert "Line 2" in caught.value.message and "{topik}" in caught.value.message and "{topic}" in caught.value.message


def test_braces_that_are_not_placeholders_stay_as_written():
    text = 'Answer as JSON like {"intent": "refund"} about {topic}.'
    assert template_check(text) == text
    assert render(text, {"topic": "refunds"}) == 'Answer as JSON like {"intent": "refund"} about refunds.'
    assert render("{topic} / {label}", {"topic": "x"}) == "x / "


def test_an_empty_template_is_refused():
    with pytest.raises(ConfigError, match="empty"):
        template_check("  \n")


def test_saving_a_change_makes_a_new_version_and_keeps_the_old_one(project, users):
    first = template_save(project=project, user=users["reviewer"], name="support", text="About {topic}.")
    again = template_save(project=project, user=users["admin"], name="support", text="About {topic}.")
    second = template_save(project=project, user=users["admin"], name="support", text="On {topic}, kindly.")
    assert (first.version, again.pk, second.version) == (1, first.pk, 2)
    first.refresh_from_db()
    assert first.text == "About {topic}." and first.created_by == users["reviewer"]
    assert [t.pk for t in templates_current(project)] == [second.pk]


def test_few_shot_count_and_name_are_checked(project, users):
    with pytest.raises(ConfigError) as caught:
        template_save(project=project, user=None, name="x", text="{topic}", few_shot=11)
    assert caught.value.field == "few_shot"
    with pytest.raises(ConfigError) as caught:
        template_save(project=project, user=None, name=" ", text="{topic}")
    assert caught.value.field == "name"
    assert not PromptTemplate.objects.exists()


def test_a_project_without_templates_gets_the_default_once(project, users):
    made = template_default(project, users["admin"])
    assert made.text == DEFAULT_TEXT and made.version == 1
    assert template_default(project, users["admin"]).pk == made.pk


def test_few_shot_examples_come_from_approved_examples_only(project, users):
    for status, text in ((Example.Status.APPROVED, "Approved question"), (Example.Status.NEEDS_REVIEW, "Unsure one")):
        example_create(
            project=project,
            user=users["reviewer"],
            messages=[
                {"role": "system", "content": "Be kind."},
                {"role": "user", "content": text},
                {"role": "assistant", "content": "An answer."},
            ],
            status=status,
        )
    pool = few_shot_pool(project)
    block = few_shot_block(pool, 3, random.Random(0))
    assert block == "User: Approved question\nAssistant: An answer."
    assert few_shot_block(pool, 0, random.Random(0)) == ""
