"""The one permission gate.

Every view, HTMX partial, mass action and service asks here what a user may do and see.
A record the user may not see is *missing* (404): "not yours" and "does not exist" look the
same. An action the user may not take raises PermissionDenied (403) before anything is written.
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from crm.models import Role

VIEW_CLIENTS = "clients.view_client"
ADD_CLIENT = "clients.add_client"
CHANGE_CLIENT = "clients.change_client"
DELETE_CLIENT = "clients.delete_client"
RESTORE_CLIENT = "clients.restore_client"
CHANGE_RESPONSIBLE = "clients.change_responsible"
IMPORT_CLIENTS = "clients.import_clients"
EXPORT_CLIENTS = "clients.export_clients"
CONFIGURE_FIELDS = "clients.change_customfield"
MANAGE_USERS = "crm.manage_users"

# What a role can be given, in the order the role form lists it. Later features add theirs.
ROLE_PERMISSIONS = [
    (_("Clients"), [
        (VIEW_CLIENTS, _("View clients")),
        (ADD_CLIENT, _("Create clients")),
        (CHANGE_CLIENT, _("Edit clients")),
        (DELETE_CLIENT, _("Delete clients")),
        (RESTORE_CLIENT, _("Restore deleted clients")),
        (CHANGE_RESPONSIBLE, _("Change the responsible")),
        (IMPORT_CLIENTS, _("Import clients")),
        (EXPORT_CLIENTS, _("Export clients")),
    ]),
    (_("Administration"), [
        (CONFIGURE_FIELDS, _("Configure client fields")),
        (MANAGE_USERS, _("Manage users and roles")),
    ]),
]
ALL_ROLE_PERMISSIONS = [code for _group, perms in ROLE_PERMISSIONS for code, _label in perms]
MANAGER_DEFAULT_PERMISSIONS = [VIEW_CLIENTS, ADD_CLIENT, CHANGE_CLIENT, DELETE_CLIENT, EXPORT_CLIENTS]


def can(user, perm: str) -> bool:
    return bool(user and user.is_authenticated and user.has_perm(perm))


def require(user, perm: str) -> None:
    """Raise PermissionDenied (403) unless the user holds the permission."""
    if not can(user, perm):
        raise PermissionDenied


def visibility(user) -> str:
    if user.is_superuser:
        return Role.Visibility.ALL
    role = user.role
    return role.visibility if role else Role.Visibility.OWN


def scope_to_user(user, qs: QuerySet, *, field: str = "responsible") -> QuerySet:
    """Narrow a queryset to the records the user's role lets them see (own / team / all)."""
    scope = visibility(user)
    if scope == Role.Visibility.ALL:
        return qs
    mine = Q(**{f"{field}_id": user.pk})
    if scope == Role.Visibility.TEAM and user.team_id:
        return qs.filter(mine | Q(**{f"{field}__team_id": user.team_id}))
    return qs.filter(mine)


def visible_clients(user, *, deleted: bool = False) -> QuerySet:
    """Clients the user may see: live ones, or (for those who may restore) deleted ones."""
    from clients.models import Client

    require(user, VIEW_CLIENTS)
    if deleted:
        require(user, RESTORE_CLIENT)
        qs = Client.objects.deleted()
    else:
        qs = Client.objects.alive()
    return scope_to_user(user, qs)


def client_or_404(user, pk, *, include_deleted: bool = False):
    """The client if the user may see it, else 404 (a deleted one only for those who may restore)."""
    from clients.models import Client

    if not can(user, VIEW_CLIENTS):
        raise Http404
    qs = scope_to_user(user, Client.objects.all())
    if not (include_deleted and can(user, RESTORE_CLIENT)):
        qs = qs.alive()
    client = qs.select_related("responsible", "created_by", "modified_by").filter(pk=pk).first()
    if client is None:
        raise Http404
    return client
