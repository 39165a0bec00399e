"""Writes to funnels, lines, stages, deals and sales. Each checks the gate and owns its transaction."""

import time
from decimal import Decimal
from typing import Any, cast

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Case, Exists, F, Field, FloatField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from guardian.shortcuts import assign_perm, get_groups_with_perms, get_users_with_perms, remove_perm

from clients.models import Client
from crm import activity, events
from crm import permissions as gate
from crm.models import Activity, Event, Notification
from crm.timezones import TIME_ZONES

from . import distribution
from .models import Deal, Funnel, Line, Sale, Stage

POSITION_GAP = 1024.0


class StaleMove(Exception):
    """The deal changed after the user's board showed it: the move is refused, nothing written."""


def new_position() -> float:
    # Newest on top without a query: the earlier a deal is created, the larger its position.
    return -time.time()


# Deals -------------------------------------------------------------------------------------


@transaction.atomic
def deal_create(*, actor, client: Client, stage: Stage, name: str, budget: Decimal = Decimal(0),
                distribute: bool = False, **fields) -> Deal:
    """Quick deal (seed 002): the author becomes responsible; with `distribute`, the line's
    distribution decides (deals.distribution), in this transaction, or the deal waits in its queue."""
    gate.require(actor, gate.ADD_DEAL)
    if not gate.visible_funnels(actor).filter(pk=stage.line.funnel_id).exists():
        raise PermissionDenied
    gate.require_field_writes(actor, gate.DEAL, None, {"budget": budget, **{k: v for k, v in fields.items() if k == "channel"}})
    deal = Deal(
        client=client, stage=stage, name=name, budget=budget, responsible=None if distribute else actor, created_by=actor,
        channel=fields.get("channel") or client.channel, position=new_position(),
    )
    deal.full_clean()
    if distribute:
        distribution.assign_new(deal, line=stage.line, actor=actor)
    deal.save()
    activity.record(client_id=client.pk, deal_id=deal.pk, actor=actor, kind=Activity.Kind.DEAL,
                    new=f"#{deal.pk} {deal.name} · {stage}")
    events.emit(Event.Kind.STAGE, client_id=client.pk, deal_id=deal.pk, stage_id=stage.pk, at=deal.entered_at)
    if distribute:
        distribution.after_insert([deal], actor=actor)
    return deal


def _position_between(stage_id: int, before_id, after_id):
    """An expression for a position between the card above (before_id) and the card below
    (after_id) in a stage, computed by the UPDATE itself (no extra round trip)."""

    def position_of(pk):
        return Subquery(Deal.objects.filter(pk=pk, stage_id=stage_id).values("position")[:1], output_field=FloatField())

    fallback = Value(new_position())
    above = position_of(int(before_id)) if str(before_id or "").isdigit() else None
    below = position_of(int(after_id)) if str(after_id or "").isdigit() else None
    if above is not None and below is not None:
        return Coalesce((above + below) / 2, above + POSITION_GAP, below - POSITION_GAP, fallback)
    if above is not None:
        return Coalesce(above + POSITION_GAP, fallback)
    if below is not None:
        return Coalesce(below - POSITION_GAP, fallback)
    return fallback


MOVE_SQL = """
WITH moved AS (
    UPDATE deals_deal AS d
       SET stage_id = %(to)s,
           position = COALESCE((%(above)s + %(below)s) / 2, %(above)s + %(gap)s, %(below)s - %(gap)s, %(fresh)s),
           version = d.version + 1,
           modified_at = %(now)s,
           entered_at = CASE WHEN d.stage_id = %(to)s THEN d.entered_at ELSE %(now)s END
     WHERE d.id = %(deal)s AND d.stage_id = %(seen)s AND d.version = %(version)s AND d.deleted_at IS NULL
       AND EXISTS (SELECT 1 FROM deals_stage s JOIN deals_line l ON l.id = s.line_id
                    WHERE s.id = %(to)s AND l.funnel_id = %(funnel)s)
    RETURNING d.id, d.client_id
), logged AS (
    INSERT INTO crm_activity (client_id, deal_id, actor_id, kind, field, field_label, old_value, new_value, text, created_at)
    SELECT client_id, id, %(actor)s, 'stage', 'stage', '', %(seen_text)s, %(to_text)s, '', %(now)s
      FROM moved WHERE %(to)s <> %(seen)s
    RETURNING id
), evented AS (
    INSERT INTO crm_event (kind, client_id, deal_id, stage_id, depth, at)
    SELECT 'stage', client_id, id, %(to)s, %(depth)s, %(now)s FROM moved WHERE %(to)s <> %(seen)s
    RETURNING id
)
SELECT count(*) FROM moved
"""
NEIGHBOUR_SQL = "(SELECT position FROM deals_deal WHERE id = %(id)s AND stage_id = %(to)s)"


def deal_move(*, actor, deal: Deal, to_stage_id: int, seen_stage_id: int, seen_version: int,
              before_id=None, after_id=None) -> int:
    """Move a deal to a stage of its funnel, between two cards. Returns the new version.

    Conditional on the stage and version the user saw: if another user moved or changed the
    deal meanwhile, no row matches and StaleMove is raised (the view answers 409). The position
    comes from the neighbours inside the UPDATE, and the feed entry is written with it: on
    PostgreSQL all of it is one statement (one round trip, atomic by itself).
    """
    gate.require(actor, gate.MOVE_DEAL)
    funnel_id = deal.stage.line.funnel_id
    if connection.vendor == "postgresql":
        updated = _move_in_one_statement(actor, deal, funnel_id, int(to_stage_id), int(seen_stage_id),
                                         int(seen_version), before_id, after_id)
    else:
        updated = _move_with_orm(actor, deal, funnel_id, to_stage_id, seen_stage_id, seen_version, before_id, after_id)
    if not updated:
        if not Stage.objects.filter(pk=to_stage_id, line__funnel_id=funnel_id).exists():
            raise ValidationError(_("Choose a stage of this deal's funnel."))
        raise StaleMove
    if int(to_stage_id) != int(seen_stage_id):
        events.dispatch_on_commit()  # the statement wrote the stage event
    _room_made(deal)
    return int(seen_version) + 1


def deal_to_stage(deal: Deal, stage: Stage, *, actor=None) -> bool:
    """Put a deal into a stage on the system's behalf (the ignore list, a robot): no permission is
    asked (the caller decided), the deal goes on top, the feed and the stage event are written. False
    if it is already there or deleted."""
    now = timezone.now()
    moved = Deal.objects.filter(pk=deal.pk, deleted_at__isnull=True).exclude(stage=stage).update(
        stage=stage, position=new_position(), version=F("version") + 1, modified_at=now, entered_at=now)
    if not moved:
        return False
    activity.record(client_id=deal.client_id, deal_id=deal.pk, actor=actor, kind=Activity.Kind.STAGE, field="stage",
                    old=deal.stage_id, new=stage.pk)
    events.emit(Event.Kind.STAGE, client_id=deal.client_id, deal_id=deal.pk, stage_id=stage.pk, at=now)
    deal.stage, deal.entered_at = stage, now
    return True


def deal_give_to(deal: Deal, user, *, by: str) -> bool:
    """Make `user` responsible for the deal on an automation's behalf (a robot named `by`); the
    caller checked that they may receive it. False if they already are."""
    now = timezone.now()
    if not Deal.objects.filter(pk=deal.pk).exclude(responsible=user).update(
            responsible=user, assigned_at=now, queued_at=None, modified_at=now, version=F("version") + 1):
        return False
    activity.record(client_id=deal.client_id, deal_id=deal.pk, actor=None, kind=Activity.Kind.CHANGE, field="responsible",
                    field_label=f"#{deal.pk} · {Deal._meta.get_field('responsible').verbose_name}",
                    old=deal.responsible, new=user)
    activity.notify(user=user, kind=Notification.Kind.ASSIGNED, actor=None, url=deal.get_absolute_url(),
                    params={"about": "deal", "actor": by, "deal_id": deal.pk, "deal": deal.name})
    _room_made(deal)
    deal.responsible = user
    return True


def _room_made(deal: Deal) -> None:
    """The deal may have left its responsible's open deals in a distributing line (moved on,
    closed, deleted, given to someone else): the line's queue gets the room once this commits."""
    line = deal.stage.line
    if line.distribution != Line.Distribution.OFF and deal.responsible_id is not None and not deal.stage.closes:
        distribution.drain_after_commit(line.pk)


def _neighbour_id(value):
    return int(value) if str(value or "").isdigit() else None


def _move_in_one_statement(actor, deal, funnel_id, to, seen, version, before_id, after_id) -> int:
    params = {
        "to": to, "seen": seen, "version": version, "deal": deal.pk, "funnel": funnel_id, "actor": actor.pk,
        "gap": POSITION_GAP, "fresh": new_position(), "now": timezone.now(),
        "seen_text": str(seen), "to_text": str(to),
        "before": _neighbour_id(before_id), "after": _neighbour_id(after_id), "depth": events.current_depth(),
    }
    sql = MOVE_SQL.replace("%(above)s", NEIGHBOUR_SQL.replace("%(id)s", "%(before)s")).replace(
        "%(below)s", NEIGHBOUR_SQL.replace("%(id)s", "%(after)s")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _move_with_orm(actor, deal, funnel_id, to_stage_id, seen_stage_id, seen_version, before_id, after_id) -> int:
    """The same move for SQLite (the embedded default): two statements in a transaction."""
    position = _position_between(to_stage_id, before_id, after_id)
    in_funnel = Exists(Stage.objects.filter(pk=to_stage_id, line__funnel_id=funnel_id))
    now = timezone.now()
    entering = int(to_stage_id) != int(seen_stage_id)
    with transaction.atomic():
        updated = (
            Deal.objects.filter(pk=deal.pk, stage_id=seen_stage_id, version=seen_version, deleted_at__isnull=True)
            .filter(in_funnel)
            .update(stage_id=to_stage_id, position=position, version=F("version") + 1, modified_at=now,
                    **({"entered_at": now} if entering else {}))
        )
        if updated and entering:
            activity.record(client_id=deal.client_id, deal_id=deal.pk, actor=actor, kind=Activity.Kind.STAGE,
                            field="stage", old=seen_stage_id, new=to_stage_id)
            events.emit(Event.Kind.STAGE, client_id=deal.client_id, deal_id=deal.pk, stage_id=int(to_stage_id), at=now)
    return updated


@transaction.atomic
def deal_update(*, actor, deal: Deal, data: dict) -> Deal:
    gate.require(actor, gate.CHANGE_DEAL)
    if "responsible" in data and getattr(data["responsible"], "pk", None) != deal.responsible_id:
        gate.require(actor, gate.CHANGE_RESPONSIBLE)
    current = Deal.objects.select_for_update(of=("self",)).select_related("responsible").get(pk=deal.pk)
    gate.require_field_writes(actor, gate.DEAL, current, data)  # hidden or read-only in the Manager layout: 403
    entries = []
    for field in ("name", "budget", "responsible", "channel", "registration_date", "custom"):
        if field not in data or data[field] == getattr(current, field):
            continue
        if field == "custom":
            for key in sorted(set(current.custom) | set(data["custom"])):
                if current.custom.get(key) != data["custom"].get(key):
                    entries.append((key, key, current.custom.get(key), data["custom"].get(key)))
        else:
            label = cast(Field, Deal._meta.get_field(field)).verbose_name
            entries.append((field, label, getattr(current, field), data[field]))
        setattr(current, field, data[field])
    if any(field == "responsible" for field, *_ in entries):
        current.assigned_at = timezone.now() if current.responsible is not None else None
        current.queued_at = None
        _room_made(deal)
    current.version = F("version") + 1
    current.save()
    if any(field == "registration_date" and old is None and new is not None for field, _label, old, new in entries):
        events.emit(Event.Kind.REGISTRATION, client_id=current.client_id, deal_id=current.pk)
    if "tags" in data:
        current.tags.set(data["tags"])
    activity.record_many([
        activity.entry(client_id=current.client_id, deal_id=current.pk, actor=actor, kind=Activity.Kind.CHANGE,
                       field=field, field_label=f"#{current.pk} · {label}", old=old, new=new)
        for field, label, old, new in entries
    ])
    if any(field == "responsible" for field, *_ in entries) and current.responsible is not None:
        activity.notify(
            user=current.responsible, kind=Notification.Kind.ASSIGNED, actor=actor, url=current.get_absolute_url(),
            params={"about": "deal", "deal_id": current.pk, "deal": current.name},
        )
    current.refresh_from_db()
    return current


@transaction.atomic
def deal_soft_delete(*, actor, deal: Deal) -> None:
    gate.require(actor, gate.DELETE_DEAL)
    now = timezone.now()
    if Deal.objects.filter(pk=deal.pk, deleted_at__isnull=True).update(
        deleted_at=now, deleted_by=actor, modified_at=now, version=F("version") + 1
    ):
        activity.record(client_id=deal.client_id, deal_id=deal.pk, actor=actor, kind=Activity.Kind.DELETED,
                        new=f"#{deal.pk} {deal.name}")
        _room_made(deal)


@transaction.atomic
def deal_restore(*, actor, deal: Deal) -> None:
    gate.require(actor, gate.RESTORE_DEAL)
    if Deal.objects.filter(pk=deal.pk, deleted_at__isnull=False).update(
        deleted_at=None, deleted_by=None, deleted_with_client=False, modified_at=timezone.now()
    ):
        activity.record(client_id=deal.client_id, deal_id=deal.pk, actor=actor, kind=Activity.Kind.RESTORED,
                        new=f"#{deal.pk} {deal.name}")


def deals_delete_with_clients(*, actor, client_ids: list[int], when) -> int:
    """Part of deleting clients "with deals": their live deals go too, marked to come back with them."""
    return Deal.objects.filter(client_id__in=client_ids, deleted_at__isnull=True).update(
        deleted_at=when, deleted_by=actor, deleted_with_client=True, modified_at=when, version=F("version") + 1
    )


def deals_restore_with_clients(*, actor, client_ids: list[int]) -> int:
    return Deal.objects.filter(client_id__in=client_ids, deleted_with_client=True).update(
        deleted_at=None, deleted_by=None, deleted_with_client=False, modified_at=timezone.now()
    )


# Sales -------------------------------------------------------------------------------------


@transaction.atomic
def sale_add(*, actor, deal: Deal, player_id: str, amount: Decimal) -> Sale:
    """A sale by hand (seed 001): the deal's and the client's count, sum and last sale date move
    with it, in the same transaction, by SQL arithmetic (two sales at once both count)."""
    gate.require(actor, gate.ADD_SALE)
    return sale_record(deal=deal, player_id=player_id, amount=amount, actor=actor,
                       fill_player_id="external_id" not in gate.locked_fields(actor))


SALE_SQL = """
WITH deal AS (
    UPDATE deals_deal SET sales_count = sales_count + 1, sales_sum = sales_sum + %(amount)s, last_sale_at = %(now)s,
                          modified_at = %(now)s
     WHERE id = %(deal)s
    RETURNING id, client_id
), sale AS (
    INSERT INTO deals_sale (deal_id, client_id, player_id, amount, currency, created_at, created_by_id)
    SELECT id, client_id, %(player)s, %(amount)s, %(currency)s, %(now)s, %(actor)s FROM deal
    RETURNING id, client_id
), client AS (
    UPDATE clients_client SET sales_count = sales_count + 1, sales_sum = sales_sum + %(amount)s, last_sale_at = %(now)s,
                              external_id = CASE WHEN %(fill)s AND external_id = '' THEN %(player)s ELSE external_id END
     WHERE id = (SELECT client_id FROM deal)
), feed AS (
    INSERT INTO crm_activity (client_id, deal_id, actor_id, kind, field, field_label, old_value, new_value, text, created_at)
    SELECT client_id, id, %(actor)s, 'sale', '', '', '', %(amount_text)s, %(text)s, %(now)s FROM deal
), event AS (
    INSERT INTO crm_event (kind, client_id, deal_id, depth, at) SELECT 'sale', client_id, id, %(depth)s, %(now)s FROM deal
)
SELECT id, client_id FROM sale
"""


def sale_record(*, deal: Deal, player_id: str, amount: Decimal, actor=None, fill_player_id: bool = True,
                text: str = "", currency: str = "") -> Sale:
    """What every sale does, by hand or from a partner's postback (no permission asked: the caller
    decided): the sale, the sums of deal and client (SQL arithmetic: two sales at once both count),
    the card's Player ID when empty, the feed, the event. One statement on PostgreSQL, which takes
    the client from the deal row it has just locked: a merge moving the deal to another client
    meanwhile (clients.merge) has the sale counted on the client the deal belongs to."""
    if amount <= 0:
        raise ValidationError(_("The amount must be greater than zero."))
    now = timezone.now()
    sale = Sale(deal=deal, client_id=deal.client_id, player_id=player_id, amount=amount, currency=currency[:3],
                created_by=actor, created_at=now)
    fill = bool(fill_player_id and player_id)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(SALE_SQL, {
                "deal": deal.pk, "player": player_id, "amount": amount, "currency": currency[:3], "now": now,
                "actor": actor.pk if actor else None, "fill": fill, "amount_text": activity.as_text(amount),
                "text": text or player_id, "depth": events.current_depth()})
            sale.pk, sale.client_id = cursor.fetchone()
        events.dispatch_on_commit()
        return sale
    sale.save()
    Deal.objects.filter(pk=deal.pk).update(
        sales_count=F("sales_count") + 1, sales_sum=F("sales_sum") + amount, last_sale_at=now, modified_at=now
    )
    client_changes = {"sales_count": F("sales_count") + 1, "sales_sum": F("sales_sum") + amount, "last_sale_at": now}
    if fill:  # the card's Player ID, when empty: in the same statement
        client_changes["external_id"] = Case(When(external_id="", then=Value(player_id)), default=F("external_id"))
    Client.objects.filter(pk=deal.client_id).update(**client_changes)
    activity.record(client_id=deal.client_id, deal_id=deal.pk, actor=actor, kind=Activity.Kind.SALE,
                    new=amount, text=text or player_id)
    events.emit(Event.Kind.SALE, client_id=deal.client_id, deal_id=deal.pk, at=now)
    return sale


def sale_reverse(*, sale: Sale, reason: str) -> bool:
    """A sale the partner rejected (a chargeback): it stays, marked reversed, and no longer counts
    in the deal's and the client's count and sum. False if it already was reversed."""
    now = timezone.now()
    if not Sale.objects.filter(pk=sale.pk, reversed_at__isnull=True).update(reversed_at=now):
        return False
    def last_counted(owner: str) -> Subquery:  # the newest sale that still counts, or none
        return Subquery(Sale.objects.filter(**{owner: OuterRef("pk")}, reversed_at__isnull=True)
                        .order_by("-created_at").values("created_at")[:1])

    Deal.objects.filter(pk=sale.deal_id).update(sales_count=F("sales_count") - 1, sales_sum=F("sales_sum") - sale.amount,
                                                last_sale_at=last_counted("deal_id"), modified_at=now)
    Client.objects.filter(pk=sale.client_id).update(sales_count=F("sales_count") - 1, sales_sum=F("sales_sum") - sale.amount,
                                                    last_sale_at=last_counted("client_id"))
    activity.record(client_id=sale.client_id, deal_id=sale.deal_id, actor=None, kind=Activity.Kind.SALE, field="reversed",
                    new=sale.amount, text=reason)
    return True


REGISTERED_SQL = """
WITH deal AS (
    UPDATE deals_deal SET registration_date = %(when)s, modified_at = %(now)s
     WHERE id = %(deal)s AND registration_date IS NULL
    RETURNING id, client_id
), client AS (
    UPDATE clients_client AS c
       SET registration_date = COALESCE(c.registration_date, %(when)s),
           external_id = CASE WHEN %(player)s <> '' AND c.external_id = '' THEN %(player)s ELSE c.external_id END
      FROM deal WHERE c.id = deal.client_id
), feed AS (
    INSERT INTO crm_activity (client_id, deal_id, actor_id, kind, field, field_label, old_value, new_value, text, created_at)
    SELECT client_id, id, NULL, 'change', 'registration_date', %(label)s, '', %(when_text)s, %(text)s, %(now)s FROM deal
), event AS (
    INSERT INTO crm_event (kind, client_id, deal_id, depth, at) SELECT 'registration', client_id, id, %(depth)s, %(now)s FROM deal
)
SELECT count(*) FROM deal
"""


def deal_registered(*, deal: Deal, player_id: str, when, text: str = "") -> bool:
    """The client registered with a partner (a postback): the deal's and the client's registration
    date and the card's Player ID, where empty; the feed and the registration event. False if the
    deal already had its date. One statement on PostgreSQL."""
    now = timezone.now()
    label = f"#{deal.pk} · {Deal._meta.get_field('registration_date').verbose_name}"[:60]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(REGISTERED_SQL, {
                "deal": deal.pk, "when": when, "now": now, "player": player_id or "", "label": label,
                "when_text": activity.as_text(when), "text": text, "depth": events.current_depth()})
            changed = cursor.fetchone()[0]
        if changed:
            events.dispatch_on_commit()
        return bool(changed)
    if not Deal.objects.filter(pk=deal.pk, registration_date__isnull=True).update(registration_date=when, modified_at=now):
        return False
    client: dict[str, Any] = {"registration_date": Coalesce("registration_date", Value(when))}
    if player_id:
        client["external_id"] = Case(When(external_id="", then=Value(player_id)), default=F("external_id"))
    Client.objects.filter(pk=deal.client_id).update(**client)
    activity.record(client_id=deal.client_id, deal_id=deal.pk, actor=None, kind=Activity.Kind.CHANGE, field="registration_date",
                    field_label=label, new=when, text=text)
    events.emit(Event.Kind.REGISTRATION, client_id=deal.client_id, deal_id=deal.pk)
    return True


# Funnels, lines, stages ----------------------------------------------------------------------


def _configure(actor):
    gate.require(actor, gate.CONFIGURE_FUNNELS)


@transaction.atomic
def funnel_create(*, actor, name: str) -> Funnel:
    _configure(actor)
    last = Funnel.objects.order_by("-position").values_list("position", flat=True).first() or 0
    funnel = Funnel.objects.create(name=name, position=last + 1)
    line = Line.objects.create(funnel=funnel, name=_("1st line"), position=1)
    Stage.objects.create(line=line, name=_("Not processed"), color="grey", position=1)
    return funnel


def funnel_rename(*, actor, funnel: Funnel, name: str) -> None:
    _configure(actor)
    Funnel.objects.filter(pk=funnel.pk).update(name=name, is_default_name=False)


def funnel_set_time_zone(*, actor, funnel: Funnel, time_zone: str) -> None:
    """The zone whose clock the funnel's robots' working hours follow (robots.conditions)."""
    _configure(actor)
    if time_zone not in TIME_ZONES:
        raise ValidationError(_("Choose a time zone from the list."))
    Funnel.objects.filter(pk=funnel.pk).update(time_zone=time_zone)


@transaction.atomic
def funnel_delete(*, actor, funnel: Funnel) -> None:
    _configure(actor)
    if Deal.objects.filter(stage__line__funnel=funnel).exists():
        raise ValidationError(_("The funnel still has deals: move or delete them first."))
    funnel.delete()


def funnel_set_access(*, actor, funnel: Funnel, users, groups) -> None:
    """Who may open the funnel besides those who configure funnels (django-guardian)."""
    _configure(actor)
    with transaction.atomic():
        for user in get_users_with_perms(funnel, only_with_perms_in=["access_funnel"], with_group_users=False):
            if user not in users:
                remove_perm(gate.ACCESS_FUNNEL, user, funnel)
        for group in cast("QuerySet[Group]", get_groups_with_perms(funnel)):  # guardian's annotation says Group | dict
            if group not in groups:
                remove_perm(gate.ACCESS_FUNNEL, group, funnel)
        for who in [*users, *groups]:
            assign_perm(gate.ACCESS_FUNNEL, who, funnel)


@transaction.atomic
def line_create(*, actor, funnel: Funnel, name: str) -> Line:
    _configure(actor)
    last = Line.objects.filter(funnel=funnel).order_by("-position").values_list("position", flat=True).first() or 0
    return Line.objects.create(funnel=funnel, name=name, position=last + 1)


def line_rename(*, actor, line: Line, name: str) -> None:
    _configure(actor)
    Line.objects.filter(pk=line.pk).update(name=name, is_default_name=False)


@transaction.atomic
def line_set_distribution(*, actor, line: Line, mode: str, cap: int | None, shift_end: str, team_ids: list[int],
                          closing: list[int]) -> None:
    """Issue 14: the line's distribution settings and the stages that close a deal. Once saved, the
    queue gets whatever room the new settings make (a cap raised, distribution turned on)."""
    _configure(actor)
    Line.objects.filter(pk=line.pk).update(distribution=mode, cap=cap, shift_end=shift_end)
    line.teams.set(team_ids)
    Stage.objects.filter(line=line).exclude(pk__in=closing).update(closes=False)
    Stage.objects.filter(line=line, pk__in=closing).update(closes=True)
    distribution.drain_after_commit(line.pk)


@transaction.atomic
def line_delete(*, actor, line: Line) -> None:
    _configure(actor)
    if Deal.objects.filter(stage__line=line).exists():
        raise ValidationError(_("The line still has deals: delete its stages first, moving their deals."))
    if Line.objects.filter(funnel_id=line.funnel_id).count() == 1:
        raise ValidationError(_("A funnel needs at least one line."))
    line.delete()


@transaction.atomic
def stage_create(*, actor, line: Line, name: str, color: str) -> Stage:
    _configure(actor)
    last = Stage.objects.filter(line=line).order_by("-position").values_list("position", flat=True).first() or 0
    return Stage.objects.create(line=line, name=name, color=color, position=last + 1)


def stage_update(*, actor, stage: Stage, name: str, color: str) -> None:
    _configure(actor)
    changes: dict[str, Any] = {"color": color}
    if name != stage.name:
        changes.update(name=name, is_default_name=False)
    Stage.objects.filter(pk=stage.pk).update(**changes)


def _reorder(siblings, ids: list[int]) -> None:
    """Number the siblings in the given order; refuse a list that is not exactly them."""
    if len(ids) != len(set(ids)) or set(ids) != set(siblings.values_list("pk", flat=True)):
        raise ValidationError(_("The list changed meanwhile: reload the page."))
    for position, pk in enumerate(ids, 1):
        siblings.filter(pk=pk).update(position=position)


@transaction.atomic
def stages_reorder(*, actor, line: Line, stage_ids: list[int]) -> None:
    _configure(actor)
    _reorder(Stage.objects.filter(line=line), stage_ids)


@transaction.atomic
def lines_reorder(*, actor, funnel: Funnel, line_ids: list[int]) -> None:
    _configure(actor)
    _reorder(Line.objects.filter(funnel=funnel), line_ids)


@transaction.atomic
def stage_delete(*, actor, stage: Stage, move_to: Stage | None) -> int:
    """Delete a stage; its deals (deleted ones too) move to move_to in the same transaction."""
    _configure(actor)
    held = Deal.objects.filter(stage=stage)
    moved = 0
    if held.exists():
        if move_to is None or move_to.pk == stage.pk or move_to.line.funnel_id != stage.line.funnel_id:
            raise ValidationError(_("Choose the stage of this funnel that gets the deals."))
        now = timezone.now()
        alive = list(held.filter(deleted_at__isnull=True).values_list("client_id", "pk"))
        moved = held.update(stage=move_to, version=F("version") + 1, modified_at=now, entered_at=now)
        events.emit_many(Event.Kind.STAGE, [(c, d, move_to.pk) for c, d in alive], at=now)
    if Stage.objects.filter(line_id=stage.line_id).count() == 1:
        raise ValidationError(_("A line needs at least one stage."))
    stage.delete()
    return moved



RECOUNT_SQL = """
    LOCK TABLE deals_deal IN SHARE MODE;
    DELETE FROM deals_stageload;
    INSERT INTO deals_stageload (stage_id, responsible_id, deals, budget, sales, changes)
    SELECT stage_id, responsible_id, count(*) FILTER (WHERE deleted_at IS NULL),
           coalesce(sum(budget) FILTER (WHERE deleted_at IS NULL), 0),
           coalesce(sum(sales_sum) FILTER (WHERE deleted_at IS NULL), 0), count(*)
    FROM deals_deal GROUP BY stage_id, responsible_id;
"""


@transaction.atomic
def board_counters_rebuild() -> int:
    """Count the board's counters (deals.StageLoad) afresh from the deals; the groups written.

    The triggers keep them exact for every write; this is for after writes that bypass triggers
    (a data-only pg_restore with --disable-triggers, session_replication_role = replica). Deals
    cannot be written meanwhile (the lock), the board can be read. PostgreSQL only."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(RECOUNT_SQL)
        cursor.execute("SELECT count(*) FROM deals_stageload")
        return cursor.fetchone()[0]
