"""The members API: a project's admins list, add, change and remove members. Projects
themselves are made and changed through /api/projects/ (curation/workspace/api.py)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.core.api import ProjectAPIView
from curation.core.permissions import Action
from curation.projects import members as member_services
from curation.projects import selectors
from curation.projects.serializers import MemberAddSerializer, MemberRoleSerializer, MemberSerializer


class MemberList(ProjectAPIView, generics.GenericAPIView):
    """The project's members and their roles (admins only); POST adds an existing user."""

    project_action = Action.MANAGE_PROJECT
    serializer_class = MemberSerializer

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        page = self.paginate_queryset(selectors.members(self.project))
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(
        request=MemberAddSerializer,
        responses={201: MemberSerializer},
        description="Adds an existing account by username or email address; there is no invitation by email.",
    )
    def post(self, request: Request, slug: str) -> Response:
        data = MemberAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = member_services.member_add(
            project=self.project, user=request.user, who=data.validated_data["user"], role=data.validated_data["role"]
        )
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetail(ProjectAPIView):
    """One member: change the role, or remove them. The last admin can be neither demoted nor removed."""

    project_action = Action.MANAGE_PROJECT

    @extend_schema(responses=MemberSerializer)
    def get(self, request: Request, slug: str, user_id: int) -> Response:
        return Response(MemberSerializer(member_services.membership_get(project=self.project, user_id=user_id)).data)

    @extend_schema(request=MemberRoleSerializer, responses=MemberSerializer)
    def patch(self, request: Request, slug: str, user_id: int) -> Response:
        data = MemberRoleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = member_services.member_role_set(
            project=self.project, user=request.user, user_id=user_id, role=data.validated_data["role"]
        )
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, user_id: int) -> Response:
        member_services.member_remove(project=self.project, user=request.user, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
