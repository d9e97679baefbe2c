from django.contrib import admin

from accounts.models import APIToken


@admin.register(APIToken)
class APITokenAdmin(admin.ModelAdmin):
    """Admins see and revoke (delete) tokens; they cannot make or change one, nor see a key."""

    list_display = ("name", "user", "token_key", "created", "last_used", "expiry")
    list_select_related = ("user",)
    search_fields = ("name", "user__username", "token_key")
    readonly_fields = ("name", "user", "token_key", "created", "last_used", "expiry")
    exclude = ("digest", "password_stamp")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
