from django.apps import AppConfig


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        from django.utils import translation

        from text import i18n

        # The plain-Python packages (llm, text, training.engine) translate through Django from now on.
        i18n.install(
            gettext=translation.gettext,
            ngettext=translation.ngettext,
            get_language=translation.get_language,
            override=translation.override,
        )
