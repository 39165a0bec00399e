"""Authentication: sign in by username or email; permissions come from the user's role."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission


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
        User = get_user_model()
        user = User.objects.select_related("role", "team").filter(pk=user_id).first()
        return user if user and self.user_can_authenticate(user) else None

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
