from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from accounts.models import APIToken


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(label=_("Username"), max_length=150)
    password = serializers.CharField(label=_("Password"), trim_whitespace=False, max_length=4096)
    name = serializers.CharField(label=_("Name"), required=False, max_length=200)


class TokenSerializer(serializers.ModelSerializer):
    # The first characters of the key: enough to tell tokens apart, useless to sign in.
    id = serializers.CharField(source="token_key")

    class Meta:
        model = APIToken
        fields = ["id", "name", "created", "last_used", "expiry"]


class TokenCreatedSerializer(TokenSerializer):
    """The key itself appears in this answer and nowhere else, ever (for the schema)."""

    token = serializers.CharField()

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
