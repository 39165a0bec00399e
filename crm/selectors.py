"""Reads for users, roles and teams (the admin pages)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from .models import Role, Team


def users_for_admin() -> QuerySet:
    return get_user_model().objects.select_related("role__group", "team").order_by("username")


def user_or_404(pk):
    return get_object_or_404(get_user_model(), pk=pk)


def roles_all() -> QuerySet:
    return Role.objects.select_related("group").order_by("group__name")


def role_or_404(pk) -> Role:
    return get_object_or_404(Role.objects.select_related("group"), pk=pk)


def role_permission_codes(role: Role) -> set[str]:
    rows = Permission.objects.filter(group=role.group_id).values_list("content_type__app_label", "codename")
    return {f"{app}.{code}" for app, code in rows}


def teams_all() -> QuerySet:
    return Team.objects.all()
