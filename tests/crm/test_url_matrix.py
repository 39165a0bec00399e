"""Walk every URL of the project as each role and fail on any leak.

Every named URL must be classified below, so a new page cannot slip past this test.
"""

import re

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from guardian.models import GroupObjectPermission, UserObjectPermission

from clients.models import CardField, ClientNote, CustomField, DuplicateSuggestion, LeadConversion, LeadStep, Merge, SavedFilter, Tag
from crm.models import Activity, Notification, Role, TableSettings, Team, User
from deals.models import Deal, Funnel, Line, Sale, Shift, Stage
from messenger.models import Attachment, Channel, Conversation, IgnoreRule, Inbound, Message, QuickReply
from partners.models import Conversion, Link, Partner, Postback
from robots.models import Robot, Run, Suspension
from tasks.models import Task, TaskType
from tests.factories import ClientFactory, CustomFieldFactory, DealFactory, FunnelFactory, role

PUBLIC = {"crm:login"}
SELF = {
    "crm:home", "crm:logout", "crm:profile", "crm:password", "crm:password-done",
    "crm:notifications", "crm:bell", "crm:notifications-read", "crm:notification-read", "tasks:counts",
}
OWN_DATA_WRITES = {"crm:profile", "crm:password", "crm:logout", "crm:notifications-read"}
ADMIN_ONLY = {
    "crm:users", "crm:user-create", "crm:user-edit", "crm:team-create", "crm:roles", "crm:role-create",
    "crm:role-edit", "fields:list", "fields:create", "fields:edit", "fields:toggle",
}
FUNNEL_SETTINGS = {
    "deals:funnels", "deals:settings", "deals:funnel-rename", "deals:funnel-delete", "deals:funnel-access",
    "deals:line-create", "deals:line-rename", "deals:line-delete", "deals:lines-order", "deals:stage-create",
    "deals:stage-update", "deals:stages-order", "deals:stage-delete", "deals:line-distribution",
    "deals:funnel-time-zone",
}
ADMIN_ONLY |= FUNNEL_SETTINGS | {"clients:layout", "clients:layout-save", "clients:layout-add", "tasks:types", "tasks:bulk",
                                "messenger:send", "imports:upload", "imports:sheet", "clients:templates",
                                "imports:map", "imports:preview", "imports:job", "imports:report", "imports:undo"}
CLIENT_RECORD = {
    "messenger:chat", "messenger:chat-poll", "messenger:chat-older", "messenger:read", "messenger:reply", "messenger:take",
    "messenger:ignore", "messenger:close", "messenger:retry", "messenger:attachment", "messenger:ignore-end",
    "clients:detail", "clients:edit", "clients:delete", "clients:restore", "deals:quick", "deals:client-row",
    "clients:panel", "clients:feed", "clients:comment", "clients:mention-options", "clients:note", "tasks:create",
    "clients:merge", "clients:merge-undo",  # a client (or a merge of clients) one may not see: 404 before the permission
}
CLIENT_RECORD |= {"clients:duplicate-dismiss"}  # a pair with a client one may not see: 404
DEAL_RECORD = {"deals:detail", "deals:edit", "deals:move", "deals:sale", "deals:delete", "deals:restore",
               "tasks:complete", "messenger:send-progress"}
JOB_RECORD = {"crm:job", "crm:job-download"}  # someone else's job: 404
SELF |= {"crm:jobs"}  # one's own jobs
FUNNEL_RECORD = {"deals:board", "deals:changes", "deals:totals", "deals:filters", "deals:table", "deals:more",
                 "deals:export"}
DEALS_SECTION = {"deals:home", "tasks:list", "deals:shifts", "deals:shift-log", "deals:shift", "deals:shift-action"}
ADMIN_ONLY |= {"deals:shift-end-for"}  # ending someone else's shift: those who manage users
CLIENT_SECTION = {
    "clients:list", "clients:count", "clients:filters", "clients:filter-save", "clients:filter-delete", "clients:search",
    "clients:columns", "clients:create", "clients:bulk-confirm", "clients:bulk-run", "clients:export",
    "clients:documents", "messenger:inbox", "messenger:list", "messenger:ignore-list",
}
CLIENT_SECTION |= {"clients:duplicates"}
ADMIN_ONLY |= {"messenger:channels", "messenger:channel-create", "messenger:channel-edit", "messenger:simulate",
               "messenger:inbound-retry", "messenger:quick-replies"}
ROBOTS = {"robots:board", "robots:create", "robots:reorder", "robots:edit", "robots:toggle", "robots:move", "robots:copy",
          "robots:delete", "robots:log", "robots:dry-run", "robots:resume"}
ADMIN_ONLY |= ROBOTS  # those who configure robots (gate.CONFIGURE_ROBOTS): 403 before any lookup
PARTNERS = {"partners:list", "partners:create", "partners:edit", "partners:token", "partners:toggle", "partners:console",
            "partners:log", "partners:replay"}
ADMIN_ONLY |= PARTNERS  # those who configure partners (gate.CONFIGURE_PARTNERS): 403 before any lookup
DEAL_RECORD |= {"partners:link-create"}  # a deal's registration link: 404 for a deal one may not see
# channels' and partners' endpoints: no session; an unknown channel, link token or partner is 404 for anyone
# (the hook and the click answer 405 to the method they do not take)
INBOUND = {"hooks:hook", "partner-go", "partner-postback"}
# Leads (seed 004): the steps beside the client fields; a lead's bar, conversion and link; today's actions
ADMIN_ONLY |= {"fields:steps", "fields:steps-order", "fields:step-rename", "fields:step-move", "fields:step-delete"}
CLIENT_RECORD |= {"clients:lead", "clients:step", "clients:convert", "clients:link", "clients:conversion-undo"}
CLIENT_SECTION |= {"clients:today-actions"}
ALL = INBOUND | PUBLIC | SELF | ADMIN_ONLY | CLIENT_RECORD | CLIENT_SECTION | DEAL_RECORD | FUNNEL_RECORD | DEALS_SECTION | JOB_RECORD


def named_patterns(resolver=None, namespace=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from named_patterns(pattern, ns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}", str(pattern.pattern)


def fingerprint():
    """Everything a forbidden request might change."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM clients_client t"
        )
        clients = cursor.fetchone()[0]
    return (
        clients,
        [(u.pk, u.username, u.email, u.role_id, u.is_active, u.password) for u in User.objects.order_by("pk")],
        [(r.pk, r.visibility, r.group.name) for r in Role.objects.select_related("group").order_by("pk")],
        sorted(Permission.objects.filter(group__isnull=False).values_list("group", "codename")),
        list(CustomField.objects.order_by("pk").values_list("pk", "label", "is_active")),
        list(SavedFilter.objects.order_by("pk").values_list("pk", "name")),
        list(TableSettings.objects.values_list("user", "columns")),
        list(Team.objects.values_list("name", flat=True)),
        list(Tag.objects.values_list("name", flat=True)),
        list(Deal.objects.order_by("pk").values_list("pk", "stage_id", "version", "deleted_at", "sales_count", "name")),
        list(Funnel.objects.order_by("pk").values_list("pk", "name")),
        list(Line.objects.order_by("pk").values_list("pk", "name", "position", "distribution", "cap", "shift_end")),
        list(Shift.objects.order_by("pk").values_list("pk", "user", "ended_at", "paused_at")),
        list(Stage.objects.order_by("pk").values_list("pk", "name", "position", "color")),
        list(Sale.objects.values_list("pk", flat=True)),
        list(GroupObjectPermission.objects.values_list("group", "object_pk")),
        list(Activity.objects.order_by("pk").values_list("pk", "kind", "text")),
        list(Task.objects.order_by("pk").values_list("pk", "status", "description", "result")),
        list(TaskType.objects.order_by("pk").values_list("pk", "name")),
        list(Notification.objects.order_by("pk").values_list("pk", "read_at")),
        list(ClientNote.objects.values_list("client", "text")),
        list(CardField.objects.order_by("pk").values_list("pk", "label", "position", "hidden", "manager_visible", "manager_editable")),
        list(UserObjectPermission.objects.values_list("user", "object_pk")),
        list(Conversation.objects.order_by("pk").values_list("pk", "assignee", "status", "unread", "version")),
        list(Message.objects.order_by("pk").values_list("pk", "status", "text")),
        list(IgnoreRule.objects.order_by("pk").values_list("pk", "ended_at")),
        list(Channel.objects.order_by("pk").values_list("pk", "name", "settings", "secrets")),
        list(Inbound.objects.order_by("pk").values_list("pk", "state", "attempts")),
        list(QuickReply.objects.values_list("pk", "title")),
        list(Robot.objects.order_by("pk").values_list("pk", "stage", "name", "is_active", "position", "actions")),
        list(Run.objects.order_by("pk").values_list("pk", "state")),
        list(Suspension.objects.values_list("robot", "deal")),
        list(Funnel.objects.order_by("pk").values_list("pk", "time_zone")),
        list(Partner.objects.order_by("pk").values_list("pk", "name", "slug", "token", "secrets", "is_active", "statuses")),
        list(Link.objects.order_by("pk").values_list("pk", "deal", "partner")),
        list(Postback.objects.order_by("pk").values_list("pk", "verdict")),
        list(Conversion.objects.values_list("pk", flat=True)),
        list(Merge.objects.order_by("pk").values_list("pk", "kept", "merged", "undone_at")),
        list(DuplicateSuggestion.objects.order_by("pk").values_list("pk", "dismissed_at")),
        list(LeadStep.objects.order_by("pk").values_list("pk", "name", "position")),
        list(LeadConversion.objects.order_by("pk").values_list("pk", "kind", "undone_at")),
    )


@pytest.fixture
def world(db, admin, manager, nobody):
    secret = ClientFactory(name="Admin's secret client", responsible=admin)
    field = CustomFieldFactory()
    saved = SavedFilter.objects.create(user=admin, name="mine", query="q=a")
    admins_note = Notification.objects.create(user=admin, kind="mention", text="for the admin only")
    from tasks.models import Task, TaskType

    admins_task = Task.objects.create(client=secret, type=TaskType.objects.first(), description="Admin's secret task",
                                      responsible=admin, deadline="2030-01-01T10:00Z")
    from messenger.models import MassSend

    admins_send = MassSend.objects.create(channel="email", subject="s", body="b", created_by=admin)
    from imports.models import ImportJob

    admins_import = ImportJob.objects.create(created_by=admin, filename="x.xlsx", file="imports/none.xlsx")
    from crm.models import Job

    admins_job = Job.objects.create(kind=Job.Kind.EXPORT, owner=admin)
    hidden_funnel = FunnelFactory(name="Secret funnel")  # granted to nobody: admins only
    hidden_stage = hidden_funnel.lines.get().stages.first()
    # in the default funnel, which managers may open, but someone else's deal
    open_stage = Stage.objects.filter(line__funnel__name="Sales").first()
    secret_deal = DealFactory(client=secret, stage=open_stage, responsible=admin, name="Admin's secret deal")
    channel = Channel.objects.create(kind="console", name="Chat")
    chat = Conversation.objects.create(channel=channel, client=secret, external_chat_id="x", assignee=admin, unread=1)
    said = Message.objects.create(conversation=chat, channel=channel, direction="out", text="Admin's secret client", status="failed")
    from django.core.files.base import ContentFile

    attached = Attachment(message=said, name="a.txt", content_type="text/plain", size=1)
    attached.file.save("a", ContentFile(b"a"), save=False)
    attached.save()
    rule = IgnoreRule.objects.create(kind="client", client=secret, created_by=admin)
    failed = Inbound.objects.create(channel=channel, dedupe_key="k", payload="{}", state="failed", attempts=5)
    robot = Robot.objects.create(stage=hidden_stage, name="Admin's robot", actions=[{"kind": "message", "text": "Hi"}])
    Suspension.objects.create(robot=robot, deal=secret_deal)
    partner = Partner.objects.create(name="Admin's partner", slug="adm", url_template="https://p.example/?c={click_id}")
    refused = Postback.objects.create(partner=partner, method="GET", verdict="unknown_status", params={"click_id": "x"})
    from clients import merge as merging

    admins_merge = merging.merge(actor=admin, kept=ClientFactory(responsible=admin), other=ClientFactory(responsible=admin),
                                 take=set())
    twin = ClientFactory(name="Admin's secret client", responsible=admin)
    pair = DuplicateSuggestion.objects.create(client=twin, other=secret, kind="name")
    objects = {
        "clients:duplicate-dismiss": pair.pk,
        "messenger": chat.pk, "messenger:retry": said.pk, "messenger:attachment": attached.pk, "messenger:ignore-end": rule.pk,
        "messenger:channel-edit": channel.pk, "messenger:simulate": channel.pk, "messenger:inbound-retry": failed.pk,
        "kind": "telegram", "token": "no-such-channel", "slug": "no-such-partner",
        "partners": partner.pk, "partners:replay": refused.pk, "clients:merge-undo": admins_merge.pk,
        "clients": secret.pk, "fields": field.pk, "crm:user-edit": admin.pk,
        "crm:role-edit": role("Admin").pk, "clients:filter-delete": saved.pk, "deals": secret_deal.pk,
        "funnel_pk": hidden_funnel.pk, "line_pk": hidden_stage.line_id, "stage_pk": hidden_stage.pk,
        "client_pk": secret.pk, "block": "contact", "robots": robot.pk, "deal_pk": secret_deal.pk, "crm:notification-read": admins_note.pk,
        "tasks:complete": admins_task.pk, "user_pk": admin.pk, "action": "start",
        "messenger:send-progress": str(admins_send.pk),
        "crm:job": str(admins_job.pk), "crm:job-download": str(admins_job.pk),
        **{name: str(admins_import.pk) for name in ("imports:sheet", "imports:map", "imports:preview",
                                                   "imports:job", "imports:report", "imports:undo")},
    }
    return {"admin": admin, "manager": manager, "nobody": nobody, "objects": objects, "secret": secret}


def url_for(name, route, objects):
    kwargs = {}
    for key in re.findall(r"<(?:int|str|uuid|slug):(\w+)>", route):
        kwargs[key] = (objects.get(name) or objects[name.split(":")[0]]) if key == "pk" else objects[key]
    return reverse(name, kwargs=kwargs)


def payload(name, world):
    secret = world["secret"].pk
    return {
        "action": "delete", "scope": "ids", "ids": [secret], "expected": "1", "name": "Hijack",
        "query": f"q={world['secret'].name}", "username": "hijack", "visibility": "all",
        "perms_0": ["clients.view_client"], "label": "Hijack", "kind": "text",
        "order": ["name"], "shown": ["name"], "responsible": world["manager"].pk,
        "stage": world["objects"]["stage_pk"], "seen_stage": 1, "seen_version": 1, "player_id": "p1",
        "amount": "10", "budget": "5", "color": "red", "with_deals": "1", "text": "Hijack @boss",
        "description": "Hijack", "deadline": "2030-01-01T10:00", "result": "hijacked", "confirm": "1",
    }


def body_of(response) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def test_every_url_is_classified():
    found = {name for name, _route in named_patterns()}
    assert found == ALL, f"unclassified: {found - ALL}, stale: {ALL - found}"


@pytest.mark.parametrize("name,route", sorted(named_patterns()))
def test_anonymous_is_sent_to_login(name, route, client, world):
    url = url_for(name, route, world["objects"])
    before = fingerprint()
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        if name in INBOUND:
            assert response.status_code in (404, 405)
        elif name in PUBLIC:
            assert response.status_code in (200, 302)
        else:
            assert response.status_code == 302 and reverse("crm:login") in response["Location"], (method, url)
    assert fingerprint() == before


@pytest.mark.parametrize("name,route", sorted(named_patterns()))
@pytest.mark.parametrize("who", ["nobody", "manager"])
def test_no_leaks_for_lesser_roles(who, name, route, client, world):
    client.force_login(world[who])
    url = url_for(name, route, world["objects"])
    before = fingerprint()
    get = client.get(url)
    post = client.post(url, payload(name, world))
    body = (body_of(get) + body_of(post)).decode(errors="replace")
    for secret in ("Admin&#x27;s secret client", "Admin's secret client", "Admin&#x27;s secret deal", "Secret funnel",
                   "for the admin only", "Admin&#x27;s secret task"):
        assert secret not in body, (who, url)
    if name in INBOUND:
        assert get.status_code in (404, 405) and post.status_code in (404, 405)
        assert name != "hooks:hook" or (get.status_code == 405 and post.status_code == 404)
        assert fingerprint() == before
        return
    if name in PUBLIC | SELF:
        assert get.status_code in (200, 302, 405)
        if name not in OWN_DATA_WRITES:
            assert fingerprint() == before, f"{who} changed data through {url}"
        return
    if name in ADMIN_ONLY:
        assert get.status_code in (403, 405) and post.status_code in (403, 405), url
    elif name in CLIENT_RECORD | DEAL_RECORD | JOB_RECORD:
        assert get.status_code in (404, 405) and post.status_code in (404, 405), url
    elif name in FUNNEL_RECORD and who == "manager":
        assert get.status_code in (404, 405) and post.status_code in (404, 405), url
    elif who == "nobody":
        assert get.status_code in (403, 405) and post.status_code in (403, 405), url
    elif name == "clients:filter-delete":
        assert post.status_code == 404  # someone else's saved filter
    else:
        # the section opens; an action the role lacks (e.g. deleting "with deals") is 403
        assert get.status_code in (200, 302, 405) and post.status_code in (200, 204, 302, 403, 405), url
    if name not in {"clients:filter-save", "clients:columns", "clients:create", "deals:shift-action"} or who == "nobody":
        assert fingerprint() == before, f"{who} changed data through {url}"


@pytest.mark.parametrize("name,route", sorted(named_patterns()))
def test_admin_reaches_every_page(name, route, admin_client, world):
    response = admin_client.get(url_for(name, route, world["objects"]))
    assert response.status_code in ((404, 405) if name in INBOUND else (200, 302, 405)), name


def test_manager_sees_no_admin_buttons(manager_client, world):
    page = manager_client.get(reverse("clients:list")).content.decode()
    assert reverse("crm:users") not in page and reverse("fields:list") not in page
    assert "view=deleted" not in page and "Change responsible" not in page
    assert reverse("clients:create") in page


def test_nobody_sees_no_clients_link(client, world):
    client.force_login(world["nobody"])
    page = client.get(reverse("crm:profile")).content.decode()
    assert reverse("clients:list") not in page
    assert re.search(r"Log out|Выйти", page)


def test_error_pages_are_friendly(manager_client, settings, world):
    settings.DEBUG = False
    missing = manager_client.get(world["secret"].get_absolute_url())
    assert missing.status_code == 404 and "Nothing here" in missing.content.decode()
    refused = manager_client.get(reverse("crm:users"))
    assert refused.status_code == 403 and "permission to do this" in refused.content.decode()


@pytest.mark.parametrize("url_name,args", [("clients:create", []), ("clients:bulk-run", []), ("deals:move", ["deal"])])
def test_writes_without_the_csrf_token_are_refused(url_name, args, admin, world):
    from django.test import Client as Browser

    browser = Browser(enforce_csrf_checks=True)
    browser.force_login(admin)
    before = fingerprint()
    url = reverse(url_name, args=[world["objects"]["deals"]] if args else [])
    response = browser.post(url, {"name": "x", "action": "delete", "scope": "filter", "stage": 1}, headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert fingerprint() == before
