from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"

    def ready(self) -> None:
        # Connects the evaluation's answer to `run_done` and registers every task of the app.
        from training import tasks  # noqa: F401
