"""Writes to users, roles and teams. Each service checks the gate first."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from . import permissions as gate
from .models import Role, Team, User


def _permissions(codes: list[str]):
    wanted = Q(pk__in=[])
    for code in codes:
        app_label, codename = code.split(".", 1)
        wanted |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(wanted)


@transaction.atomic
def role_save(*, actor, role: Role | None, name: str, visibility: str, permissions: list[str]) -> Role:
    gate.require(actor, gate.MANAGE_USERS)
    codes = [c for c in permissions if c in gate.ALL_ROLE_PERMISSIONS]
    if role is None:
        group = Group.objects.create(name=name)
        role = Role.objects.create(group=group, visibility=visibility)
    else:
        role.group.name = name
        role.group.save(update_fields=["name"])
        role.visibility = visibility
        role.save(update_fields=["visibility"])
    # Permissions outside the role form (none yet) are left as they were.
    kept = role.group.permissions.exclude(pk__in=_permissions(gate.ALL_ROLE_PERMISSIONS))
    role.group.permissions.set([*kept, *_permissions(codes)])
    return role


@transaction.atomic
def user_save(*, actor, form) -> User:
    """Save a user from the admin's form and keep the role's group in step (guardian reads groups)."""
    gate.require(actor, gate.MANAGE_USERS)
    user = form.save(commit=False)
    if form.cleaned_data.get("password1"):
        user.set_password(form.cleaned_data["password1"])
    user.save()
    user.groups.set([user.role.group] if user.role else [])
    return user


def team_create(*, actor, name: str) -> Team:
    gate.require(actor, gate.MANAGE_USERS)
    return Team.objects.create(name=name)


def profile_save(*, actor, form) -> User:
    return form.save()
