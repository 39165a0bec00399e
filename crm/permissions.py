"""The one permission gate.

Every view, HTMX partial, mass action and service asks here what a user may do and see.
A record the user may not see is *missing* (404): "not yours" and "does not exist" look the
same. An action the user may not take raises PermissionDenied (403) before anything is written.
"""

import time

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
CONFIGURE_FIELDS = "clients.change_customfield"  # also the lead steps (seed 004)
MERGE_CLIENTS = "clients.merge_clients"
MANAGE_USERS = "crm.manage_users"
VIEW_DEALS = "deals.view_deal"
ADD_DEAL = "deals.add_deal"
CHANGE_DEAL = "deals.change_deal"
MOVE_DEAL = "deals.move_deal"
DELETE_DEAL = "deals.delete_deal"
RESTORE_DEAL = "deals.restore_deal"
ADD_SALE = "deals.add_sale"
CONFIGURE_FUNNELS = "deals.change_funnel"
ACCESS_FUNNEL = "deals.access_funnel"  # object-level (django-guardian), per funnel
VIEW_TASKS = "tasks.view_task"
ADD_TASK = "tasks.add_task"
CHANGE_TASK = "tasks.change_task"
ADD_TASKS_BULK = "tasks.add_task_bulk"
CONFIGURE_TASK_TYPES = "tasks.change_tasktype"
SEND_MESSAGES = "messenger.send_messages"
REPLY = "messenger.reply"
MANAGE_IGNORE = "messenger.manage_ignore"
CONFIGURE_CHANNELS = "messenger.configure_channels"
CONFIGURE_ROBOTS = "robots.configure_robots"
CONFIGURE_PARTNERS = "partners.configure_partners"

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
        (MERGE_CLIENTS, _("Merge clients")),
        (SEND_MESSAGES, _("Send SMS and email")),
    ]),
    (_("Deals"), [
        (VIEW_DEALS, _("View deals")),
        (ADD_DEAL, _("Create deals")),
        (CHANGE_DEAL, _("Edit deals")),
        (MOVE_DEAL, _("Move deals on the board")),
        (ADD_SALE, _("Add sales by hand")),
        (DELETE_DEAL, _("Delete deals")),
        (RESTORE_DEAL, _("Restore deleted deals")),
    ]),
    (_("Messenger"), [
        (REPLY, _("Chat with clients")),
        (MANAGE_IGNORE, _("Put clients on the ignore list")),
    ]),
    (_("Tasks"), [
        (VIEW_TASKS, _("View tasks")),
        (ADD_TASK, _("Create tasks")),
        (CHANGE_TASK, _("Complete and edit tasks")),
        (ADD_TASKS_BULK, _("Create tasks in bulk")),
    ]),
    (_("Administration"), [
        (CONFIGURE_TASK_TYPES, _("Configure task types")),
        (CONFIGURE_FUNNELS, _("Configure funnels")),
        (CONFIGURE_FIELDS, _("Configure client fields")),
        (CONFIGURE_CHANNELS, _("Configure channels")),
        (CONFIGURE_ROBOTS, _("Configure robots")),
        (CONFIGURE_PARTNERS, _("Configure partners and see postbacks")),
        (MANAGE_USERS, _("Manage users and roles")),
    ]),
]
ALL_ROLE_PERMISSIONS = [code for _group, perms in ROLE_PERMISSIONS for code, _label in perms]


class Abilities:
    """What templates ask the gate: `{% if may.add_deal %}`, one name per constant above
    (lower case). An unknown name is an error, not a silent "no"."""

    NAMES = {name.lower(): value for name, value in globals().items()
             if name.isupper() and isinstance(value, str) and "." in value}

    def __init__(self, user):
        self._user = user

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            perm = self.NAMES[name]
        except KeyError:
            raise LookupError(f"the gate knows no ability {name!r}") from None
        return can(self._user, perm)


def abilities(user, names) -> dict[str, bool]:
    """{name: whether the user may}, for a Jinja2 fragment, by the names templates use for `may`
    (Abilities.NAMES: an unknown name is an error)."""
    return {name: can(user, Abilities.NAMES[name]) for name in names}


def template_context(request) -> dict:
    """Context processor: `may` for every template."""
    return {"may": Abilities(getattr(request, "user", None))}


def _per_request(user, name: str) -> dict:
    """A dict kept on the user object, which lives for one request (as the role's permissions the
    auth backend reads once): what the gate answers more than once per page is worked out once."""
    kept = getattr(user, name, None)
    if kept is None:
        kept = {}
        setattr(user, name, kept)
    return kept


def can(user, perm: str) -> bool:
    """Whether the user holds the permission (a page asks 70 times: answered once per request)."""
    if not (user and user.is_authenticated):
        return False
    answers = _per_request(user, "_can_answers")
    if perm not in answers:
        answers[perm] = user.has_perm(perm)
    return answers[perm]


def require(user, perm: str) -> None:
    """Raise PermissionDenied (403) unless the user holds the permission."""
    if not can(user, perm):
        raise PermissionDenied


def visibility(user) -> str:
    if user.is_superuser:
        return Role.Visibility.ALL
    role = user.role
    return role.visibility if role else Role.Visibility.OWN


def scope_to_user[QS: QuerySet](user, qs: QS, *, field: str = "responsible") -> QS:
    """Narrow a queryset to the records the user's role lets them see (own / team / all)."""
    scope = visibility(user)
    if scope == Role.Visibility.ALL:
        return qs
    mine = Q(**{f"{field}_id": user.pk})
    if scope == Role.Visibility.TEAM and user.team_id:
        return qs.filter(mine | Q(**{f"{field}__team_id": user.team_id}))
    return qs.filter(mine)


def scope_sql(user, column: str) -> tuple[str, list]:
    """scope_to_user as an SQL condition on a responsible-user column, for the few statements
    written by hand (the board's poll): the same rule, checked equal to it by the tests."""
    from django.contrib.auth import get_user_model

    scope = visibility(user)
    if scope == Role.Visibility.ALL:
        return "TRUE", []
    if scope == Role.Visibility.TEAM and user.team_id:
        users = get_user_model()._meta.db_table
        return f"({column} = %s OR {column} IN (SELECT id FROM {users} WHERE team_id = %s))", [user.pk, user.team_id]
    return f"{column} = %s", [user.pk]


def visible_users(viewer) -> QuerySet:
    """The users whose records the viewer's visibility reaches (their shifts, their load): everyone,
    their team, or themselves; scope_to_user applied to users themselves."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.all()
    scope = visibility(viewer)
    if scope == Role.Visibility.ALL:
        return users
    if scope == Role.Visibility.TEAM and viewer.team_id:
        return users.filter(Q(pk=viewer.pk) | Q(team_id=viewer.team_id))
    return users.filter(pk=viewer.pk)


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


def visible_clients_sql(user, alias: str) -> tuple[str, list]:
    """visible_clients(user) (live clients) as an SQL condition on the clients table's `alias`, for
    the clients table's hand-written page (clients.selectors.hand_written_page): the same check
    (may the user see clients), live clients only, scope_sql within them. Checked equal to it by
    the tests."""
    require(user, VIEW_CLIENTS)
    scope, params = scope_sql(user, f"{alias}.responsible_id")
    return f"{alias}.deleted_at IS NULL AND {scope}", params


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


def funnel_reach(user) -> tuple[bool, list[int]]:
    """Which funnels the user may open, as (every one, else these ids): every one for those who
    configure funnels, else those granted to the user or one of their groups (django-guardian
    object permission deals.access_funnel), by ids read from the cache (granted_funnel_ids); none
    without the permission to view deals. The rule of visible_funnels, for hand-written SQL too."""
    if not can(user, VIEW_DEALS):
        return False, []
    if can(user, CONFIGURE_FUNNELS):
        return True, []
    return False, sorted(granted_funnel_ids(user))


def visible_funnels(user) -> QuerySet:
    """Funnels the user may open (funnel_reach)."""
    from deals.models import Funnel

    every, ids = funnel_reach(user)
    return Funnel.objects.all() if every else Funnel.objects.filter(pk__in=ids)


# Which funnels a user may open, kept in the cache: guardian's queryset cost the board's poll
# (every 4 s per open board) more than the rest of it, and every deals page ~2 ms. Any change of a grant or of
# a user's groups moves GRANTS_VERSION_KEY on (crm.apps connects the signals), so no answer outlives
# a change; FUNNEL_IDS_TTL bounds one the cache missed.
GRANTS_VERSION_KEY = "gate:grants-version"
FUNNEL_IDS_TTL = 300


def grants_changed(**_kwargs) -> None:
    """Signal receiver: a funnel grant or a user's groups changed."""
    from django.core.cache import cache

    cache.set(GRANTS_VERSION_KEY, time.time_ns(), None)


def granted_funnel_ids(user) -> frozenset[int]:
    """The funnels granted to the user or one of their groups (guardian's deals.access_funnel),
    from the cache; read with guardian's queryset on a miss."""
    from django.core.cache import cache
    from guardian.shortcuts import get_objects_for_user

    from deals.models import Funnel

    version = cache.get(GRANTS_VERSION_KEY)
    if version is None:
        version = time.time_ns()
        cache.add(GRANTS_VERSION_KEY, version, None)
        version = cache.get(GRANTS_VERSION_KEY, version)
    key = f"gate:funnels:{user.pk}:{version}"
    granted = cache.get(key)
    if granted is None:
        funnels = get_objects_for_user(user, ACCESS_FUNNEL, Funnel.objects.all(), accept_global_perms=False)
        granted = frozenset(funnels.values_list("pk", flat=True))
        cache.set(key, granted, FUNNEL_IDS_TTL)
    return granted


def may_open_funnel(user, funnel_pk: int) -> bool:
    """visible_funnels(user).filter(pk=funnel_pk).exists(), answered from the cache."""
    if not can(user, VIEW_DEALS):
        return False
    if can(user, CONFIGURE_FUNNELS):
        return True
    return int(funnel_pk) in granted_funnel_ids(user)


def funnel_or_404(user, pk):
    funnel = visible_funnels(user).filter(pk=pk).first()
    if funnel is None:
        raise Http404
    return funnel


def may_open_stages(user, stages) -> bool:
    """Whether the user may open the funnel of every stage (Stage objects with their line)."""
    return all(may_open_funnel(user, funnel_pk) for funnel_pk in {stage.line.funnel_id for stage in stages})


def visible_deals(user, *, deleted: bool = False, stages=None) -> QuerySet:
    """Deals the user may see: in funnels they may open, within their role's visibility. With
    `stages` (Stage objects with their line), those in these stages, none of them in a funnel the
    user may not open: the funnels are asked of the cached grants (may_open_funnel), and the
    statement filters on the stage ids alone (no subquery over guardian's tables, no join to the
    funnel: the board's per-stage index walk stays as it is)."""
    from deals.models import Deal

    require(user, VIEW_DEALS)
    if deleted:
        require(user, RESTORE_DEAL)
    qs = Deal.objects.filter(deleted_at__isnull=not deleted)
    if stages is not None:
        if not may_open_stages(user, stages):
            return qs.none()
        qs = qs.filter(stage_id__in=[stage.pk for stage in stages])
    elif not can(user, CONFIGURE_FUNNELS):
        qs = qs.filter(stage__line__funnel__in=visible_funnels(user).values("pk"))
    return scope_to_user(user, qs)


def visible_deals_sql(user, stages, alias: str, *, one_of_them: str = "") -> tuple[str, list]:
    """visible_deals(user, stages=stages) as an SQL condition on the deals table's `alias`, for the
    board's hand-written statement (deals.selectors.first_cards): the same checks (may the user
    see deals, open every stage's funnel), the same stages, live deals only, scope_sql within
    them; "FALSE" where visible_deals would be empty. Checked equal to it by the tests.

    `one_of_them`: an SQL expression the caller guarantees is the id of one of `stages` (a LATERAL
    join's over them); the deals are of that stage alone, and the condition leaves out the list,
    which would only keep PostgreSQL from walking a (responsible, stage, position) index in order."""
    require(user, VIEW_DEALS)
    if not may_open_stages(user, stages):
        return "FALSE", []
    scope, params = scope_sql(user, f"{alias}.responsible_id")
    if one_of_them:
        return f"{alias}.deleted_at IS NULL AND {alias}.stage_id = {one_of_them} AND {scope}", list(params)
    return (f"{alias}.deleted_at IS NULL AND {alias}.stage_id = ANY(%s::bigint[]) AND {scope}",
            [[stage.pk for stage in stages], *params])


def deal_or_404(user, pk, *, include_deleted: bool = False):
    from deals.models import Deal

    if not can(user, VIEW_DEALS):
        raise Http404
    qs = scope_to_user(user, Deal.objects.all())
    if not can(user, CONFIGURE_FUNNELS):
        qs = qs.filter(stage__line__funnel__in=visible_funnels(user).values("pk"))
    if not (include_deleted and can(user, RESTORE_DEAL)):
        qs = qs.filter(deleted_at__isnull=True)
    deal = qs.select_related("client", "stage__line__funnel", "responsible").filter(pk=pk).first()
    if deal is None:
        raise Http404
    return deal


# Fields ---------------------------------------------------------------------------------------
# The card layouts (seed 001, clients/layout.py) say per block which fields the Manager mode sees
# and edits; admins (those who configure fields) see and edit every field. Pages, partials,
# exports, documents and searches leave out what `hidden_fields` names; services refuse (403)
# a write that changes anything `locked_fields` names.

CONTACT = "contact"
DEAL = "deal"
# The deal block's keys that are a different attribute on the deal.
DEAL_ATTRIBUTE = {"deal_responsible": "responsible"}


def sees_every_field(user) -> bool:
    """Admin mode: those who may configure card layouts see and edit every field."""
    return can(user, CONFIGURE_FIELDS)


def _layout_rows(block: str, rows=None, user=None):
    """The block's layout rows: those given, else read once per request."""
    if rows is not None:
        return rows
    from clients.layout import block_rows

    if user is None:
        return block_rows(block)
    read = _per_request(user, "_layout_rows")
    if block not in read:
        read[block] = block_rows(block)
    return read[block]


def hidden_fields(user, block: str = CONTACT, rows=None) -> set[str]:
    """Keys of the block's fields the user may not see (none in Admin mode): of the layout `rows`
    when given, else of both blocks' hidden keys, read once per request (hidden_by_block)."""
    if sees_every_field(user):
        return set()
    if rows is None:
        return set(hidden_by_block(user)[block])
    return {row.key for row in rows if row.hidden or not row.manager_visible}


def hidden_by_block(user) -> dict[str, set[str]]:
    """hidden_fields of both blocks, in one query of the hidden rows' keys, once per request (the
    deal window and the card show both blocks; the table and the board ask it again and again)."""
    if sees_every_field(user):
        return {CONTACT: set(), DEAL: set()}
    read = _per_request(user, "_hidden_keys")
    if not read:
        from clients.layout import hidden_keys

        read.update(hidden_keys())
    return {block: set(read.get(block, ())) for block in (CONTACT, DEAL)}


def hidden_keys_wanted(user) -> bool:
    """Whether a page's frame, reading in one round trip what the page starts from, should read
    the layout's hidden keys too (clients.layout.hidden_keys_sql) and keep them (keep_hidden_keys):
    a user in Manager mode whose keys were not read yet in this request."""
    return not sees_every_field(user) and not _per_request(user, "_hidden_keys")


def keep_hidden_keys(user, keys: dict[str, set[str]]) -> None:
    """Keep for this request the hidden keys a page's frame read (hidden_by_block answers from them)."""
    _per_request(user, "_hidden_keys").update(keys)


def locked_fields(user, block: str = CONTACT, rows=None) -> set[str]:
    """Keys of the block's fields the user may not write: hidden, invisible or read-only."""
    if sees_every_field(user):
        return set()
    return {
        row.key for row in _layout_rows(block, rows, user)
        if row.hidden or not row.manager_visible or not row.manager_editable
    }


def _comparable(value):
    value = getattr(value, "pk", value)
    return None if value in ("", [], {}, 0) else value


def refuse_crafted_reassignment(request, *, current) -> None:
    """The responsible select is disabled without the permission; a POST that sets it anyway
    is refused (403)."""
    posted = request.POST.get("responsible", "")
    if posted and posted != str(current) and not can(request.user, CHANGE_RESPONSIBLE):
        raise PermissionDenied


def refuse_posted_fields(request, names) -> None:
    """A form never shows a field the user may not write: a POST that sends one anyway is
    crafted, and refused (403) before anything is read from it."""
    if set(names) & set(request.POST):
        raise PermissionDenied


def require_field_writes(user, block: str, current, data: dict) -> None:
    """403 before anything is written when `data` (model attribute → new value, custom fields
    under "custom") changes a field the user's layout does not let them write. `current` is the
    stored record, or None for a new one (then only a non-empty value counts as a change)."""
    locked = locked_fields(user, block)
    if not locked:
        return
    stored_custom = (getattr(current, "custom", None) or {}) if current is not None else {}
    for key in locked:
        if key.startswith("cf_"):
            if "custom" in data and _comparable((data["custom"] or {}).get(key)) != _comparable(stored_custom.get(key)):
                raise PermissionDenied
            continue
        attribute = DEAL_ATTRIBUTE.get(key, key) if block == DEAL else key
        if attribute not in data:
            continue
        stored = getattr(current, attribute, None) if current is not None else None
        if _comparable(data[attribute]) != _comparable(stored):
            raise PermissionDenied


def visible_tasks(user) -> QuerySet:
    """Tasks the user may see: by the role's visibility on the task's responsible, and only for
    clients the user may see."""
    from tasks.models import Task

    require(user, VIEW_TASKS)
    qs = Task.objects.filter(client__deleted_at__isnull=True)
    return scope_to_user(user, qs)


def task_or_404(user, pk):
    if not can(user, VIEW_TASKS):
        raise Http404
    task = visible_tasks(user).select_related("client", "type", "responsible").filter(pk=pk).first()
    if task is None:
        raise Http404
    return task


# Who may see a client (mentions, notifications) ----------------------------------------------


def may_see_client(user, client) -> bool:
    """Whether the user may see this client: they hold clients.view_client and their role's
    visibility (own / team / all, by responsible) reaches it."""
    from clients.models import Client

    if not can(user, VIEW_CLIENTS):
        return False
    return scope_to_user(user, Client.objects.filter(pk=client.pk)).exists()


def users_who_may_see_client(client, candidates: QuerySet) -> QuerySet:
    """The candidates who may see the client, as one query: `may_see_client` in SQL. Permissions
    come from the role's group (crm.backends.RoleBackend) or superuser status; visibility as in
    `scope_to_user`, on the client's responsible."""
    from django.contrib.auth.models import Permission
    from django.db.models import Exists, OuterRef

    app_label, codename = VIEW_CLIENTS.split(".")
    holds = Exists(Permission.objects.filter(group__role__id=OuterRef("role_id"), content_type__app_label=app_label,
                                             codename=codename))
    reach = Q(is_superuser=True) | Q(role__visibility=Role.Visibility.ALL)
    if client.responsible_id is not None:
        reach |= Q(pk=client.responsible_id)
        team_id = client.responsible.team_id
        if team_id is not None:
            reach |= Q(role__visibility=Role.Visibility.TEAM, team_id=team_id)
    return candidates.filter(Q(is_superuser=True) | Q(holds), reach, is_active=True)


# Jobs (issue 12) ----------------------------------------------------------------------------


def visible_jobs(user) -> QuerySet:
    """Background jobs the user may follow: their own; every job for those who manage users."""
    from crm.models import Job

    if not (user and user.is_authenticated):
        return Job.objects.none()
    qs = Job.objects.select_related("owner")
    return qs if can(user, MANAGE_USERS) else qs.filter(owner=user)


def job_or_404(user, pk):
    job = visible_jobs(user).filter(pk=pk).first()
    if job is None:
        raise Http404
    return job
