"""The ignore list (seed 000, menu «Игнор»; DESIGN §7).

Putting a client on it moves their open deals to their line's Ignore stage and marks their
conversations ignored; their messages are still stored but count as unread for nobody and notify
no one. A rule ends when an admin or manager takes it off the list, when its date passes, or (with
"back on a new message") on the client's next message; the next message after that moves the deal
to «Вернулся из игнора» and gives it out again (messenger.receive). Every change is on the feed.
Senders can also be ignored by pattern (an id, a phone, an e-mail with * wildcards): those
need the right to configure channels.
"""

from fnmatch import fnmatchcase

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from clients.models import Client
from clients.phones import normalize_phone
from crm import activity
from crm import permissions as gate
from crm.models import Activity
from deals.models import Deal, Stage
from deals.services import deal_to_stage

from .models import Conversation, IgnoreRule

MANAGE_IGNORE = gate.MANAGE_IGNORE
CONFIGURE_CHANNELS = gate.CONFIGURE_CHANNELS


def active() -> "Q":
    now = timezone.now()
    return Q(ended_at__isnull=True) & (Q(until__isnull=True) | Q(until__gt=now))


def active_rule(client: Client, item=None) -> IgnoreRule | None:
    """The rule that ignores this client or sender now, if any."""
    match = Q(kind=IgnoreRule.Kind.CLIENT, client=client)
    phones = [p for p in (client.phone, *(client.extra_phones or [])) if p]
    if item is not None:
        match |= Q(kind=IgnoreRule.Kind.SENDER, pattern=item.chat_id)
        if item.phone:
            try:
                phones.append(normalize_phone(item.phone))
            except ValidationError:
                pass
    if phones:
        match |= Q(kind=IgnoreRule.Kind.PHONE, pattern__in=phones)
    rules = list(IgnoreRule.objects.filter(active()).filter(match | Q(kind=IgnoreRule.Kind.EMAIL))[:200])
    emails = {e.lower() for e in (client.email, getattr(item, "email", "")) if e}
    for rule in rules:
        if rule.kind != IgnoreRule.Kind.EMAIL:
            return rule
        if any(fnmatchcase(email, rule.pattern.lower()) for email in emails):
            return rule
    return None


def _feed(client_id: int, actor, *, on: bool, rule: IgnoreRule) -> None:
    activity.record(client_id=client_id, actor=actor, kind=Activity.Kind.IGNORE, field="on" if on else "off",
                    new=rule.pattern or "", text=rule.reason)


@transaction.atomic
def ignore_client(*, actor, client: Client, reason: str = "", until=None, back_on_message: bool = False) -> IgnoreRule:
    gate.require(actor, MANAGE_IGNORE)
    if not gate.may_see_client(actor, client):
        raise PermissionDenied
    existing = IgnoreRule.objects.filter(active(), kind=IgnoreRule.Kind.CLIENT, client=client).first()
    if existing is not None:
        return existing
    rule = IgnoreRule.objects.create(kind=IgnoreRule.Kind.CLIENT, client=client, reason=reason.strip()[:200], until=until,
                                     back_on_message=back_on_message, created_by=actor)
    _to_ignore_stage(client, actor)
    Conversation.objects.filter(client=client).update(status=Conversation.Status.IGNORED, unread=0,
                                                      version=F("version") + 1)
    _feed(client.pk, actor, on=True, rule=rule)
    return rule


def _to_ignore_stage(client: Client, actor) -> None:
    """Each open deal of the client goes to its line's Ignore stage (when the line has one)."""
    for deal in Deal.objects.filter(client=client, deleted_at__isnull=True, stage__closes=False).select_related("stage"):
        stage = Stage.objects.filter(line_id=deal.stage.line_id, code="ignore").first()
        if stage is None or stage.pk == deal.stage_id:
            continue
        deal_to_stage(deal, stage, actor=actor)


@transaction.atomic
def ignore_pattern(*, actor, kind: str, pattern: str, reason: str = "", until=None, back_on_message: bool = False) -> IgnoreRule:
    gate.require(actor, CONFIGURE_CHANNELS)
    pattern = pattern.strip()
    if kind == IgnoreRule.Kind.PHONE:
        pattern = normalize_phone(pattern)
    elif kind == IgnoreRule.Kind.EMAIL:
        pattern = pattern.lower()
        if "@" not in pattern:
            raise ValidationError(_("Write an e-mail address or a pattern such as *@example.com."))
    if not pattern or kind not in (IgnoreRule.Kind.SENDER, IgnoreRule.Kind.PHONE, IgnoreRule.Kind.EMAIL):
        raise ValidationError(_("Write what to ignore."))
    return IgnoreRule.objects.create(kind=kind, pattern=pattern[:200], reason=reason.strip()[:200], until=until,
                                     back_on_message=back_on_message, created_by=actor)


def end(rule: IgnoreRule, *, actor) -> None:
    """Take a rule off the list (its client's conversations open again; the deal stays in Ignore until they write)."""
    updated = IgnoreRule.objects.filter(pk=rule.pk, ended_at__isnull=True).update(ended_at=timezone.now(), ended_by=actor)
    if updated and rule.client_id:
        Conversation.objects.filter(client_id=rule.client_id, status=Conversation.Status.IGNORED).update(
            status=Conversation.Status.OPEN, version=F("version") + 1)
        _feed(rule.client_id, actor, on=False, rule=rule)


@transaction.atomic
def unignore(*, actor, rule: IgnoreRule) -> None:
    gate.require(actor, MANAGE_IGNORE if rule.kind == IgnoreRule.Kind.CLIENT else CONFIGURE_CHANNELS)
    if rule.client_id and not gate.may_see_client(actor, rule.client):
        raise PermissionDenied
    end(rule, actor=actor)


def visible_rules(user, *, query: str = "", ended: bool = False):
    """The list page's rules: clients the user may see, and (for those who configure channels) patterns."""
    rules = IgnoreRule.objects.select_related("client", "created_by", "ended_by")
    rules = rules.exclude(active()) if ended else rules.filter(active())
    mine = Q(client__in=gate.visible_clients(user)) if gate.can(user, gate.VIEW_CLIENTS) else Q(pk__in=[])
    if gate.can(user, CONFIGURE_CHANNELS):
        mine |= Q(client__isnull=True)
    rules = rules.filter(mine)
    query = query.strip()
    if query:
        rules = rules.filter(Q(client__name__icontains=query) | Q(pattern__icontains=query) | Q(reason__icontains=query)
                             | Q(client__phone__contains=query) | Q(client__email__icontains=query))
    return rules
