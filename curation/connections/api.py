"""The connections API: reviewers list the connections a project may use (to name one in a
job); admins add, change and delete the project's own. A secret's value never appears; its
name is shown to admins only. ConnectionInvalid becomes a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.connections.services import (
    connection_create,
    connection_delete,
    connection_update,
    connections_for,
    secret_names,
)
from curation.core.api import ProjectAPIView
from curation.core.permissions import Action, role_allows
from curation.models import Connection


class ConnectionPublicSerializer(serializers.ModelSerializer):
    """What a reviewer sees: enough to choose one, not where it points or what it sends."""

    shared = serializers.SerializerMethodField(
        help_text="True for the operator's connections, offered to every project."
    )

    class Meta:
        model = Connection
        fields = ["id", "name", "kind", "model", "shared"]

    def get_shared(self, connection: Connection) -> bool:
        return connection.project_id is None


class ConnectionSerializer(ConnectionPublicSerializer):
    """What an admin sees: also where it points and which secret (by name) it sends."""

    class Meta(ConnectionPublicSerializer.Meta):
        fields = ["id", "name", "kind", "folder", "base_url", "model", "timeout", "secret", "shared", "created_at"]


class ConnectionInputSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True)
    kind = serializers.CharField(required=False, help_text=", ".join(Connection.Kind.values))
    folder = serializers.CharField(required=False, allow_blank=True, help_text="folder: a path inside the models dir.")
    base_url = serializers.CharField(required=False, allow_blank=True)
    model = serializers.CharField(required=False, allow_blank=True)
    timeout = serializers.FloatField(required=False)
    secret = serializers.CharField(
        required=False, allow_blank=True, help_text="The name of one of the operator's secrets, or empty."
    )


class ConnectionAPIView(ProjectAPIView):
    def shown(self, connection: Connection) -> dict[str, Any]:
        if role_allows(self.role, Action.MANAGE_PROJECT):
            return ConnectionSerializer(connection).data
        return ConnectionPublicSerializer(connection).data


class ConnectionList(ConnectionAPIView):
    project_action = {"GET": Action.REVIEW, "POST": Action.MANAGE_PROJECT}

    @extend_schema(
        responses=ConnectionSerializer(many=True),
        description="The connections this project may use: its own and the operator's. Admins also see the "
        "address, folder and secret name; nobody sees a secret's value.",
    )
    def get(self, request: Request, slug: str) -> Response:
        return Response([self.shown(c) for c in connections_for(self.project)])

    @extend_schema(
        request=ConnectionInputSerializer,
        responses={201: ConnectionSerializer},
        description="Add a connection. `secret` must be one of the operator's secrets (see `secrets`), `folder` a "
        "folder inside the models directory, `base_url` an address the server may reach; else 400.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = ConnectionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        saved = connection_create(project=self.project, user=request.user, **data.validated_data)
        return Response(self.shown(saved), status=status.HTTP_201_CREATED)


class ConnectionSecrets(ConnectionAPIView):
    project_action = Action.MANAGE_PROJECT

    @extend_schema(
        responses=serializers.ListSerializer(child=serializers.CharField()),
        description="The names of the operator's secrets a connection may send (never their values).",
    )
    def get(self, request: Request, slug: str) -> Response:
        return Response(secret_names())


class ConnectionDetail(ConnectionAPIView):
    project_action = {"GET": Action.REVIEW, "PATCH": Action.MANAGE_PROJECT, "DELETE": Action.MANAGE_PROJECT}

    def get_connection(self, connection_id: int, *, own: bool) -> Connection:
        found = connections_for(self.project)
        if own:  # the operator's connections are changed by the operator only
            found = found.filter(project=self.project)
        return get_object_or_404(found, pk=connection_id)

    @extend_schema(responses=ConnectionSerializer)
    def get(self, request: Request, slug: str, connection_id: int) -> Response:
        return Response(self.shown(self.get_connection(connection_id, own=False)))

    @extend_schema(request=ConnectionInputSerializer, responses=ConnectionSerializer)
    def patch(self, request: Request, slug: str, connection_id: int) -> Response:
        connection = self.get_connection(connection_id, own=True)
        data = ConnectionInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(self.shown(connection_update(connection=connection, **data.validated_data)))

    @extend_schema(
        request=None,
        responses={204: None},
        description="Delete a connection. Jobs that used it keep their backend name and results; resuming one "
        "is refused.",
    )
    def delete(self, request: Request, slug: str, connection_id: int) -> Response:
        connection_delete(connection=self.get_connection(connection_id, own=True))
        return Response(status=status.HTTP_204_NO_CONTENT)
