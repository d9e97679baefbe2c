"""A consumer gives back the models it has not used for SHIKOMI_MODEL_IDLE_SECONDS.

Every worker of a consumer calls the startup hook below; the first starts one timer thread per
process (`llm.loading.start_idle_release`) that releases the idle entries of the process's model
cache and logs what went and what stays (logger "shikomi.models", in the consumer's output).

A timer thread rather than a periodic Huey task: a periodic task is queued, so it waits while
every worker is busy (a training run holds one for hours) and, with several consumers sharing a
queue, runs on whichever consumer takes it, not necessarily the one holding the models; the timer
runs in the very process whose memory it frees, whether its workers are threads or processes
(each worker process runs the hook and gets its own timer). Imported by `training.tasks`, which
every consumer imports.
"""

from django.conf import settings
from django_huey import on_startup

from llm.loading import start_idle_release


def release_idle_models() -> None:
    start_idle_release(settings.SHIKOMI_MODEL_IDLE_SECONDS)


# Both queues: a light consumer holds the embedding model of similarity rules and duplicates.
for _queue in settings.QUEUES:
    on_startup(name="shikomi_release_idle_models", queue=_queue)(release_idle_models)
