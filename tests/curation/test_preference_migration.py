"""Migration 0012: preference pairs stored with text answers become assistant messages (and go
back to text when it is unapplied)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("curation", "0011_annotation_turn_ratings")]
AFTER = [("curation", "0012_preference_messages")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_text_pairs_become_assistant_messages_and_back():
    old = migrate(BEFORE)
    project = old.get_model("curation", "Project").objects.create(name="Old", slug="old-pairs", kind="chat")
    pair = old.get_model("curation", "PreferencePair").objects.create(
        project=project,
        prompt=[{"role": "user", "content": "Hi"}],
        chosen="Hello! 👋",
        rejected="Go away.",
        origin="edit",
    )
    try:
        new = migrate(AFTER)
        moved = new.get_model("curation", "PreferencePair").objects.get(pk=pair.pk)
        assert moved.chosen == {"role": "assistant", "content": "Hello! 👋"}
        assert moved.rejected == {"role": "assistant", "content": "Go away."}
        assert (moved.prompt, moved.tools, moved.origin) == ([{"role": "user", "content": "Hi"}], [], "edit")
        back = migrate(BEFORE).get_model("curation", "PreferencePair").objects.get(pk=pair.pk)
        assert (back.chosen, back.rejected) == ("Hello! 👋", "Go away.")
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
