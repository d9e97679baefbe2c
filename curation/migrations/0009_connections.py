"""Connections replace the backends reviewers typed into jobs.

Each distinct backend spec of a project's generation and LLM-judge jobs becomes one connection
of that project, and the job's spec becomes {"connection": id}, so old jobs still show and
resume. A spec that cannot be trusted is kept visible but defused: a model path outside the
models directory becomes an embedded-model connection whose name says it needs fixing, and an
API key variable without the operator's prefix is dropped (an admin picks a secret again).
"""

import json
from pathlib import Path
from urllib.parse import urlsplit

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

EMBEDDED = "Embedded model"


def _unique_name(Connection, project_id, wanted):
    name, n = wanted[:100], 2
    while Connection.objects.filter(project_id=project_id, name=name).exists() or (
        Connection.objects.filter(project__isnull=True, name=name).exists()
    ):
        suffix = f" ({n})"
        name, n = wanted[: 100 - len(suffix)] + suffix, n + 1
    return name


def _inside_models_dir(path):
    """The path relative to the models directory when it is a folder inside it, else None."""
    root = Path(settings.SHIKOMI_MODELS_DIR).resolve()
    given = Path(path)
    if ".." in given.parts:
        return None
    try:
        resolved = (given if given.is_absolute() else root / given).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if resolved == root or not resolved.is_relative_to(root) or not resolved.is_dir():
        return None
    return str(resolved.relative_to(root))


def _connection_for(Connection, project_id, spec, embedded):
    """The connection a pre-connection spec becomes (None: the spec is kept as it is)."""
    kind = spec.get("kind") or "local"
    if "connection" in spec or kind == "tuned":
        return None
    if kind == "local":
        path = str(spec.get("model") or "").strip()
        if not path:
            return embedded
        relative = _inside_models_dir(path)
        if relative is not None:
            fields = {"kind": "folder", "folder": relative}
            wanted = f"Folder {relative}"
        else:
            # Runs the embedded model until an admin fixes it; the name shows the old path.
            fields = {"kind": "embedded"}
            wanted = f"Needs fixing: model {path}"
    else:
        prefix = settings.SHIKOMI_SECRET_PREFIX
        key_env = str(spec.get("api_key_env") or "").strip()
        try:
            timeout = float(spec.get("timeout") or 60)
        except (TypeError, ValueError):
            timeout = 60.0
        fields = {
            "kind": "openai",
            "base_url": str(spec.get("base_url") or "").strip()[:500],
            "model": str(spec.get("model") or "").strip()[:300],
            "timeout": min(max(timeout, 1.0), 600.0),
            "secret": key_env if key_env.startswith(prefix) and len(key_env) > len(prefix) else "",
        }
        wanted = f"{fields['model'] or 'model'} @ {urlsplit(fields['base_url']).netloc or 'server'}"
    found = Connection.objects.filter(project_id=project_id, **fields).first()
    if found is not None:
        return found
    return Connection.objects.create(project_id=project_id, name=_unique_name(Connection, project_id, wanted), **fields)


def specs_to_connections(apps, schema_editor):
    Connection = apps.get_model("curation", "Connection")
    GenerationJob = apps.get_model("curation", "GenerationJob")
    JudgeJob = apps.get_model("training", "JudgeJob")
    embedded = Connection.objects.filter(project__isnull=True, kind="embedded").first() or Connection.objects.create(
        project=None, name=EMBEDDED, kind="embedded"
    )
    seen = {}

    def convert(project_id, spec):
        key = (project_id, json.dumps(spec or {}, sort_keys=True))
        if key not in seen:
            connection = _connection_for(Connection, project_id, spec or {}, embedded)
            seen[key] = None if connection is None else {"connection": connection.pk}
        return seen[key]

    for job in GenerationJob.objects.all().iterator():
        config = dict(job.config or {})
        new = convert(job.project_id, config.get("backend"))
        if new is not None:
            config["backend"] = new
            GenerationJob.objects.filter(pk=job.pk).update(config=config)
    for job in JudgeJob.objects.select_related("evaluation__run").iterator():
        new = convert(job.evaluation.run.project_id, job.backend)
        if new is not None:
            JudgeJob.objects.filter(pk=job.pk).update(backend=new)


class Migration(migrations.Migration):
    dependencies = [
        ("curation", "0008_synthetic_drafts"),
        ("training", "0005_eval_sample_context"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Connection",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("embedded", "Embedded model (SmolLM2, on this server)"),
                            ("folder", "Model folder on this server"),
                            ("openai", "OpenAI-compatible server"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "folder",
                    models.CharField(
                        blank=True,
                        help_text="A model folder, relative to the operator's models directory.",
                        max_length=500,
                    ),
                ),
                ("base_url", models.CharField(blank=True, max_length=500)),
                ("model", models.CharField(blank=True, help_text="The model name the server serves.", max_length=300)),
                ("timeout", models.FloatField(default=60)),
                (
                    "secret",
                    models.CharField(
                        blank=True, help_text="The name of the secret sent as the API key.", max_length=200
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        blank=True,
                        help_text="Empty: the operator's connection, offered to every project.",
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="connections",
                        to="curation.project",
                    ),
                ),
            ],
            options={
                "ordering": ["name", "id"],
                "constraints": [
                    models.UniqueConstraint(fields=("project", "name"), name="connection_name_unique_in_project"),
                    models.UniqueConstraint(
                        condition=models.Q(("project__isnull", True)),
                        fields=("name",),
                        name="connection_name_unique_instance_wide",
                    ),
                ],
            },
        ),
        migrations.RunPython(specs_to_connections, migrations.RunPython.noop),
    ]
