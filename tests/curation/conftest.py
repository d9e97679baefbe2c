"""Fixtures the import and export tests share (named io_* so they never shadow the
project-wide fixtures in tests/conftest.py)."""

from pathlib import Path

import pytest

from curation.models import Label, Project


@pytest.fixture(autouse=True)
def io_uploads(settings, tmp_path) -> Path:
    """Uploads go to the test's own folder, never to a shared data folder."""
    settings.UPLOAD_DIR = tmp_path / "uploads"
    return settings.UPLOAD_DIR


@pytest.fixture
def io_user(django_user_model):
    return django_user_model.objects.create_user(username="importer", password="x" * 12)


@pytest.fixture
def io_project(db) -> Project:
    project = Project.objects.create(name="Support", slug="io-support", kind=Project.Kind.CHAT)
    Label.objects.create(project=project, name="billing")
    Label.objects.create(project=project, name="shipping")
    return project
