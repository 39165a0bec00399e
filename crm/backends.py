"""Authentication: sign in by username or email; permissions come from the user's role."""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from . import raw
from .models import Role, Team


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
        permissions as an array, in one statement written by hand (_user_sql): every request
        reads it, the framework floor of every page and the board's poll. The ORM's building and
        compiling of the same select_related query cost more than the query (about 40 % of a
        trivial signed-in request), and a query of its own for the permissions a round trip."""
        if connection.vendor != "postgresql":
            user = get_user_model().objects.select_related("role", "team").filter(pk=user_id).first()
        else:
            try:
                pk = int(user_id)
            except (TypeError, ValueError):
                return None
            with raw.prepared_cursor() as cursor:
                cursor.execute(_user_sql(), [pk])
                row = cursor.fetchone()
            user = None if row is None else _user_from_row(row)
        if user is None or not self.user_can_authenticate(user):
            return None
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


_USER_PARTS = ((Role, "r", "role"), (Team, "tm", "team"))


@functools.cache
def _user_sql() -> str:
    """One user by id, with their role and team (each NULL when unset: LEFT JOIN) and the
    permissions of _perms_sql, columns in raw.select_list order."""
    User = get_user_model()
    user = User._meta.db_table
    joins = "".join(f" LEFT JOIN {model._meta.db_table} {alias} ON {alias}.id = {user}.{name}_id"
                    for model, alias, name in _USER_PARTS)
    parts = "".join(f", {raw.select_list(model, alias)}" for model, alias, _name in _USER_PARTS)
    return f"SELECT {raw.select_list(User, user)}{parts}, {_perms_sql()} FROM {user}{joins} WHERE {user}.id = %s"


def _user_from_row(row):
    """The user of a _user_sql row, its role and team cached as select_related caches them."""
    User = get_user_model()
    start = len(User._meta.concrete_fields)
    user = raw.instances(User, [row])[0]
    for model, _alias, name in _USER_PARTS:
        width = len(model._meta.concrete_fields)
        values = row[start : start + width]
        user._state.fields_cache[name] = raw.instances(model, [values])[0] if values[0] is not None else None
        start += width
    user._role_perm_cache = set(row[start])  # what get_all_permissions would read
    return user


@functools.cache
def _perms_sql() -> str:
    """A user's permissions ("app_label.codename") as an array: every one for a superuser, else
    those of the group behind the user's role (as get_all_permissions reads them). One subquery
    with the condition inside: two, one per case, took twice as long to plan (0.85 against 0.42 ms,
    on every request)."""
    User = get_user_model()
    user, permission, content_type = User._meta.db_table, Permission._meta.db_table, ContentType._meta.db_table
    through = Permission.group_set.through._meta.db_table
    return (f"ARRAY(SELECT ct.app_label || '.' || p.codename FROM {permission} p JOIN {content_type} ct ON ct.id = p.content_type_id"
            f" WHERE {user}.is_superuser OR p.id IN (SELECT gp.permission_id FROM {through} gp"
            f" JOIN {Role._meta.db_table} r ON r.group_id = gp.group_id WHERE r.id = {user}.role_id))")
