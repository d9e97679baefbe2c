"""Who is in a project with which role: add an existing user (by username or email), change a
role, remove. A project always keeps one admin. Each change is recorded as a ProjectChange.
There is no invitation by email: the site sends no mail, so the operator creates accounts."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.translation import gettext as _

from curation.models import Membership, Project, Role
from curation.projects.services import ProjectError, change_record


def _role(value: Any) -> str:
    if value not in Role.values:
        raise ProjectError("role", _("Choose one of %(values)s.") % {"values": ", ".join(Role.values)})
    return value


def user_find(who: Any) -> Any:
    """The user with this username (exactly, then in any case) or this email address."""
    if not isinstance(who, str) or not who.strip():
        raise ProjectError("user", _("Give a username or an email address."))
    who = who.strip()
    users = get_user_model().objects.filter(is_active=True)
    found = users.filter(username=who).first() or users.filter(username__iexact=who).first()
    if found is None and "@" in who:
        matches = list(users.filter(email__iexact=who)[:2])
        if len(matches) > 1:
            raise ProjectError("user", _("Several users have this email address; give the username instead."))
        found = matches[0] if matches else None
    if found is None:
        raise ProjectError(
            "user",
            _(
                "No user with the username or email address %(who)s. Only existing accounts can be added; "
                "ask the operator to create one."
            )
            % {"who": who},
        )
    return found


@transaction.atomic
def member_add(*, project: Project, user: Any, who: str, role: str) -> Membership:
    role = _role(role)
    person = user_find(who)
    existing = Membership.objects.filter(project=project, user=person).first()
    if existing is not None:
        raise ProjectError(
            "user",
            _("%(name)s is a member already (%(role)s); change the role instead.")
            % {"name": person.get_username(), "role": existing.get_role_display()},
        )
    membership = Membership.objects.create(project=project, user=person, role=role)
    change_record(project=project, user=user, action="member_add", member=person.get_username(), after={"role": role})
    return membership


def membership_get(*, project: Project, user_id: int) -> Membership:
    membership = Membership.objects.filter(project=project, user_id=user_id).select_related("user").first()
    if membership is None:
        raise ProjectError("user", _("This user is not a member of the project."), status=404)
    return membership


def _keeps_an_admin(project: Project, membership: Membership) -> None:
    """Refuse to leave the project without an admin membership (the admin rows are locked, so two
    admins demoting each other at once cannot both succeed)."""
    if membership.role != Role.ADMIN:
        return
    admins = list(Membership.objects.select_for_update().filter(project=project, role=Role.ADMIN).values_list("pk"))
    if len(admins) <= 1:
        raise ProjectError(
            "role",
            _("%(name)s is the project's last admin; make someone else an admin first.")
            % {"name": membership.user.get_username()},
        )


@transaction.atomic
def member_role_set(*, project: Project, user: Any, user_id: int, role: str) -> Membership:
    role = _role(role)
    membership = membership_get(project=project, user_id=user_id)
    if membership.role == role:
        return membership
    if role != Role.ADMIN:
        _keeps_an_admin(project, membership)
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    change_record(
        project=project,
        user=user,
        action="member_role",
        member=membership.user.get_username(),
        before={"role": before},
        after={"role": role},
    )
    return membership


@transaction.atomic
def member_remove(*, project: Project, user: Any, user_id: int) -> None:
    """The membership goes; what the person did (annotations, revisions) stays."""
    membership = membership_get(project=project, user_id=user_id)
    _keeps_an_admin(project, membership)
    change_record(
        project=project,
        user=user,
        action="member_remove",
        member=membership.user.get_username(),
        before={"role": membership.role},
    )
    membership.delete()
