"""Preference pairs keep whole assistant messages: chosen and rejected were texts, so the tool
calls and reasoning of the answers were lost. Each text becomes {"role": "assistant", "content":
text}; going back keeps the content. Pairs gain the example's tools and the origin "import"."""

from django.db import migrations, models


def texts_to_messages(apps, schema_editor):
    PreferencePair = apps.get_model("curation", "PreferencePair")
    for pair in PreferencePair.objects.only("pk", "chosen_text", "rejected_text").iterator(chunk_size=1000):
        PreferencePair.objects.filter(pk=pair.pk).update(
            chosen={"role": "assistant", "content": pair.chosen_text},
            rejected={"role": "assistant", "content": pair.rejected_text},
        )


def messages_to_texts(apps, schema_editor):
    PreferencePair = apps.get_model("curation", "PreferencePair")
    for pair in PreferencePair.objects.only("pk", "chosen", "rejected").iterator(chunk_size=1000):
        PreferencePair.objects.filter(pk=pair.pk).update(
            chosen_text=_content(pair.chosen), rejected_text=_content(pair.rejected)
        )


def _content(message):
    if isinstance(message, dict):
        return str(message.get("content") or "")
    return "" if message is None else str(message)


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0011_annotation_turn_ratings"),
    ]

    operations = [
        migrations.RenameField(model_name="preferencepair", old_name="chosen", new_name="chosen_text"),
        migrations.RenameField(model_name="preferencepair", old_name="rejected", new_name="rejected_text"),
        # Nullable while both exist, so that going back can add the text columns before filling them.
        migrations.AlterField(model_name="preferencepair", name="chosen_text", field=models.TextField(null=True)),
        migrations.AlterField(model_name="preferencepair", name="rejected_text", field=models.TextField(null=True)),
        migrations.AddField(model_name="preferencepair", name="chosen", field=models.JSONField(null=True)),
        migrations.AddField(model_name="preferencepair", name="rejected", field=models.JSONField(null=True)),
        migrations.RunPython(texts_to_messages, messages_to_texts, elidable=False),
        migrations.RemoveField(model_name="preferencepair", name="chosen_text"),
        migrations.RemoveField(model_name="preferencepair", name="rejected_text"),
        migrations.AlterField(
            model_name="preferencepair",
            name="chosen",
            field=models.JSONField(help_text="The preferred assistant message (content, reasoning, tool calls)."),
        ),
        migrations.AlterField(
            model_name="preferencepair",
            name="rejected",
            field=models.JSONField(help_text="The assistant message ranked lower, or the model's before an edit."),
        ),
        migrations.AddField(
            model_name="preferencepair",
            name="tools",
            field=models.JSONField(
                blank=True, default=list, help_text="The functions the conversation may call (the example's tools)."
            ),
        ),
        migrations.AlterField(
            model_name="preferencepair",
            name="prompt",
            field=models.JSONField(help_text="The conversation up to the answer: canonical messages."),
        ),
        migrations.AlterField(
            model_name="preferencepair",
            name="origin",
            field=models.CharField(
                choices=[("ranking", "Ranking"), ("edit", "Edit"), ("import", "Import")], max_length=20
            ),
        ),
    ]
