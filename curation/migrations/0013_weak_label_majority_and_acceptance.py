"""Weak labels keep majority vote's answer beside the label model's, so either can be accepted,
and say which one an example took. Existing runs get majority vote from their stored votes (a
tie or no vote is no decision; the confidence is the winner's share of the votes); labels
accepted so far came from the run's own model: the label model, or majority vote for a run
with fewer than three rules."""

import django.db.models.deletion
from django.db import migrations, models


def majority_from_votes(apps, schema_editor):
    RuleRun = apps.get_model("curation", "RuleRun")
    WeakLabel = apps.get_model("curation", "WeakLabel")
    Label = apps.get_model("curation", "Label")
    Example = apps.get_model("curation", "Example")
    for run in RuleRun.objects.only("pk", "project_id", "metrics").iterator():
        ids = dict(Label.objects.filter(project_id=run.project_id).values_list("name", "pk"))
        changed = []
        for weak in WeakLabel.objects.filter(run=run).only("pk", "votes").iterator(chunk_size=2000):
            counts: dict[str, int] = {}
            for name in (weak.votes or {}).values():
                counts[name] = counts.get(name, 0) + 1
            if not counts:
                continue
            best = max(counts.values())
            winners = [name for name, n in counts.items() if n == best]
            if len(winners) == 1 and winners[0] in ids:
                weak.majority_label_id = ids[winners[0]]
                weak.majority_confidence = best / sum(counts.values())
                changed.append(weak)
        WeakLabel.objects.bulk_update(changed, ["majority_label", "majority_confidence"], batch_size=1000)
        model = (run.metrics or {}).get("model") or "label_model"
        accepted = Example.objects.filter(weak_label__run=run).values("weak_label_id")
        WeakLabel.objects.filter(pk__in=accepted).update(accepted_from=model)


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0012_preference_messages"),
    ]

    operations = [
        migrations.AddField(
            model_name="weaklabel",
            name="accepted_from",
            field=models.CharField(
                blank=True,
                choices=[("label_model", "Label model"), ("majority", "Majority vote")],
                help_text="Which model's label an example took when this weak label was last accepted.",
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="weaklabel",
            name="majority_confidence",
            field=models.FloatField(
                default=0.0, help_text="The majority label's share of the votes cast (0 without a decision)."
            ),
        ),
        migrations.AddField(
            model_name="weaklabel",
            name="majority_label",
            field=models.ForeignKey(
                help_text="The label most rules voted for; none on a tie or without votes.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="curation.label",
            ),
        ),
        migrations.RunPython(majority_from_votes, migrations.RunPython.noop),
    ]
