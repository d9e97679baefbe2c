from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from curation.connections.services import (
    CONNECTION_FIELDS,
    ConnectionInvalid,
    connection_clean,
    connection_update,
    secret_names,
)
from curation.core.services import user_language_set
from curation.models import (
    Annotation,
    Connection,
    Example,
    ExampleRevision,
    ImportJob,
    Label,
    Membership,
    Project,
    UserSettings,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class LabelInline(admin.TabularInline):
    model = Label
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "kind", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, LabelInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role"]
    list_filter = ["role", "project"]
    autocomplete_fields = ["user"]


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "shortcut", "colour"]
    list_filter = ["project"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown, never written here. Examples change through curation/core/services.py, which checks
    roles, keeps the content hash and search text right and leaves a revision; a form in Django
    admin would do none of that. Change them on the example pages or through the API."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Example)
class ExampleAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "label", "source", "status", "split", "version", "updated_at"]
    list_filter = ["project", "source", "status", "split"]
    list_select_related = ["project", "label"]


@admin.register(ExampleRevision)
class ExampleRevisionAdmin(ReadOnlyAdmin):  # history is append-only
    list_display = ["id", "example_id", "project", "action", "version", "user", "created_at"]
    list_filter = ["project", "action"]
    list_select_related = ["project", "user"]


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):  # written by the import (curation/io); deleting one would unlink its examples
    list_display = ["id", "project", "filename", "format", "status", "rows_created", "created_at"]
    list_filter = ["project", "status", "format"]


@admin.register(Annotation)
class AnnotationAdmin(ReadOnlyAdmin):  # an answer is the annotator's; changing it here would change agreement
    list_display = ["id", "example_id", "annotator", "status", "label", "rating", "updated_at"]
    list_filter = ["status", "example__project"]
    list_select_related = ["annotator", "label"]
    raw_id_fields = ["example"]


@admin.register(UserSettings)
class UserSettingsAdmin(admin.ModelAdmin):
    list_display = ["user", "language"]

    def save_model(self, request: HttpRequest, obj: UserSettings, form: forms.ModelForm, change: bool) -> None:
        user_language_set(user=obj.user, language=obj.language)


class ConnectionAdminForm(forms.ModelForm):
    """Connections through the same checks as the Connections page: the secret from the
    operator's list, folders inside the models directory, addresses the worker may reach."""

    secret = forms.ChoiceField(required=False, label=_("Secret"))

    class Meta:
        model = Connection
        fields = ["project", *CONNECTION_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["secret"].choices = [("", "—")] + [(name, name) for name in secret_names()]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            connection_clean(
                project=data.get("project"),
                instance=self.instance if self.instance.pk else None,
                **{key: data.get(key) for key in CONNECTION_FIELDS},
            )
        except ConnectionInvalid as error:
            raise ValidationError({error.field if error.field in self.fields else None: error.message}) from None
        return data


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    """Where the operator adds connections for every project (leave the project empty)."""

    form = ConnectionAdminForm
    list_display = ["name", "project", "kind", "model", "secret"]
    list_filter = ["kind", "project"]
    list_select_related = ["project"]

    def save_model(self, request: HttpRequest, obj: Connection, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        connection_update(connection=obj, **{key: form.cleaned_data.get(key) for key in CONNECTION_FIELDS})
