import os

from django.core.management.base import BaseCommand

from curation.demo.load import demo_load


class Command(BaseCommand):
    help = "Create the demo users and the demo project (safe to run again)."

    def handle(self, *args, **options) -> None:
        password = os.getenv("DEMO_PASSWORD", "shikomi-demo")
        project, added = demo_load(password=password)
        waiting = project.drafts.filter(decision="pending").count()
        self.stdout.write(
            f"Demo project {project.slug!r}: {added} examples added, {project.examples.count()} in all "
            f"({waiting} synthetic drafts waiting for review)."
        )
