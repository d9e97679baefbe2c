"""Import a file (or a Hugging Face save_to_disk folder) into a project, now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation import formats
from curation.core.services import InvalidExample
from curation.io.imports import example_import_path
from curation.models import ImportJob, Project

GUESSES = {
    ".jsonl": "openai",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "hf",
    ".zip": "hf",
}


class Command(BaseCommand):
    help = "Import examples from a file into a project; every bad row is listed with its line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="The project's slug.")
        parser.add_argument("file", help="A file, or a folder written by datasets' save_to_disk.")
        parser.add_argument(
            "--format",
            choices=[*formats.IMPORT_FORMATS, *formats.IMPORT_ALIASES],
            help="Guessed from the extension when left out (.jsonl, .csv, .tsv, .parquet, .zip, a folder).",
        )
        parser.add_argument(
            "--mapping",
            help="Columns or keys of any format, field=column: text=question,label=category or "
            "instruction=question,output=answer; join columns with + (instruction=title+body, joined "
            "with a blank line).",
        )
        parser.add_argument("--encoding", help="Text files: auto (the default), utf-8, utf-16, cp932, ...")
        parser.add_argument("--delimiter", help="CSV/TSV cell separator (default , for csv, tab for tsv).")
        parser.add_argument("--split", help="Split for rows that name none: train, validation or test.")
        parser.add_argument(
            "--skip-bad-rows", action="store_true", help="Import the good rows of a file with bad ones."
        )
        parser.add_argument("--user", help="Username recorded as the importer.")

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project with the slug {options['project']!r}.")
        path = Path(options["file"])
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder.")
        format = options["format"] or ("hf" if path.is_dir() else GUESSES.get(path.suffix.lower()))
        if format is None:
            raise CommandError(f"Cannot tell the format of {path.name}; give it with --format.")
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        import_options = {
            "mapping": options["mapping"],
            "encoding": options["encoding"],
            "delimiter": options["delimiter"],
            "split": options["split"],
            "skip_bad_rows": options["skip_bad_rows"],
        }
        try:
            job = example_import_path(project=project, user=user, path=path, format=format, options=import_options)
        except InvalidExample as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from exc
        self._print_report(job)
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(job.error)

    def _print_report(self, job: ImportJob) -> None:
        report = job.report or {}
        encoding = f", encoding {report['encoding']}" if report.get("encoding") else ""
        self.stdout.write(
            f"{job.filename}: read {job.rows_read} rows{encoding}; created {job.rows_created}, "
            f"duplicates {job.rows_duplicate}, rows with errors {job.rows_invalid}."
        )
        for error in report.get("errors", []):
            where = f"{error['field']}: " if error["field"] else ""
            self.stdout.write(f"  line {error['line']}: {error['code']}: {where}{error['message']}")
        if report.get("errors_total", 0) > len(report.get("errors", [])):
            self.stdout.write(f"  ... {report['errors_total'] - len(report['errors'])} more errors.")
        for duplicate in report.get("duplicates", []):
            self.stdout.write(f"  line {duplicate['line']}: duplicate of {duplicate['duplicate_of']}, skipped")
