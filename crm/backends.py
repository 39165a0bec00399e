"""Authentication: sign in by username or email; permissions come from the user's role."""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models.expressions import RawSQL

from .models import Role


class RoleBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if not username or password is None:
            return None
        user = self._find(username.strip())
        if user is None:
            get_user_model()().set_password(password)  # same work as a real check: no timing oracle
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    @staticmethod
    def _find(login: str):
        """An email (unique, any case) if it has "@", else the username: exact first, then any case.

        Usernames may not contain "@" (crm.forms.UserForm), so the two can never be confused.
        """
        User = get_user_model()
        if "@" in login:
            return User.objects.filter(email__iexact=login).first()
        exact = User.objects.filter(username=login).first()
        if exact is not None:
            return exact
        matches = list(User.objects.filter(username__iexact=login)[:2])
        return matches[0] if len(matches) == 1 else None

    def get_user(self, user_id):
        """The signed-in user with their role and team and, on PostgreSQL, their role's
        permissions as an array in the same statement: every page asks for them, and a query of
        their own cost each page a round trip (the board's poll a third of its time). Hand-written
        SQL: the ORM's subquery expressions cost more to compile than the query they save."""
        User = get_user_model()
        users = User.objects.select_related("role", "team").filter(pk=user_id).order_by()
        if connection.vendor == "postgresql":
            users = users.annotate(role_perms=RawSQL(_perms_sql(), ()))
        user = next(iter(users[:1]), None)
        if user is None or not self.user_can_authenticate(user):
            return None
        if hasattr(user, "role_perms"):  # what get_all_permissions would read
            user._role_perm_cache = set(user.role_perms)
        return user

    def get_all_permissions(self, user_obj, obj=None):
        """All of a user's permissions in one query, cached on the user for the request."""
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_role_perm_cache"):
            if user_obj.is_superuser:
                perms = Permission.objects.all()
            elif user_obj.role_id:
                perms = Permission.objects.filter(group__role__id=user_obj.role_id)
            else:
                perms = Permission.objects.none()
            rows = perms.values_list("content_type__app_label", "codename").order_by()
            user_obj._role_perm_cache = {f"{app}.{code}" for app, code in rows}
        return user_obj._role_perm_cache

    def get_user_permissions(self, user_obj, obj=None):
        return set()

    def get_group_permissions(self, user_obj, obj=None):
        return self.get_all_permissions(user_obj, obj)

    def has_perm(self, user_obj, perm, obj=None):
        return user_obj.is_active and perm in self.get_all_permissions(user_obj, obj)


@functools.cache
def _perms_sql() -> str:
    """A user's permissions ("app_label.codename") as an array: every one for a superuser, else
    those of the group behind the user's role (as get_all_permissions reads them)."""
    User = get_user_model()
    user, permission, content_type = User._meta.db_table, Permission._meta.db_table, ContentType._meta.db_table
    through = Permission.group_set.through._meta.db_table
    names = f"SELECT ct.app_label || '.' || p.codename FROM {permission} p JOIN {content_type} ct ON ct.id = p.content_type_id"
    return (f"CASE WHEN {user}.is_superuser THEN ARRAY({names}) ELSE ARRAY({names}"
            f" JOIN {through} gp ON gp.permission_id = p.id JOIN {Role._meta.db_table} r ON r.group_id = gp.group_id"
            f" WHERE r.id = {user}.role_id) END")
