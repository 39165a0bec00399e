"""What a robot's actions do (robots.models documents each kind's parameters).

`perform(run, index, action, deal)` does one action inside the engine's transaction for that step
and returns its outcome: {"code": kind, "value": what it names (a stage, a text), "error": why it
could not} — stored on the run and written to the deal's feed, worded when read (robots.texts).
`preview(action, deal)` says the same without doing anything (the dry run).
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone

from clients.models import Tag
from crm import activity
from crm.models import Notification, User
from deals import distribution
from deals.models import Line, Stage
from deals.services import deal_give_to, deal_to_stage

from .models import Robot

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render(template: str, deal) -> str:
    """A message or task text with the deal's values: {name} {first_name} {manager} {deal} {link}."""
    client = deal.client
    values = {
        "name": client.name,
        "first_name": (client.name.split() or [""])[-1] if " " in client.name else client.name,
        "manager": str(deal.responsible) if deal.responsible_id else "",
        "deal": deal.name,
        "budget": format(deal.budget.normalize(), "f") if deal.budget else "",
    }
    text = template or ""
    if "{link}" in text:
        values["link"] = registration_link(deal)
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text).strip()


def registration_link(deal) -> str:
    """{link}: the deal's registration link with the first active partner, made if it has none yet
    (seed 001: the link the manager sends the client); empty when no partner is set up."""
    from django.conf import settings
    from django.urls import reverse

    from partners.models import Link, Partner

    link = Link.objects.filter(deal=deal, partner__is_active=True).order_by("partner__name", "pk").first()
    if link is None:
        partner = Partner.objects.filter(is_active=True).order_by("name", "pk").first()
        if partner is None:
            return ""
        link, _created = Link.objects.get_or_create(deal=deal, partner=partner)
    return settings.PUBLIC_URL.rstrip("/") + reverse("partner-go", args=[link.token])


def perform(run, index: int, action: dict, deal) -> dict:
    return _ACTIONS[action.get("kind", "")](action, deal, run=run, index=index, dry=False)


def preview(action: dict, deal) -> dict:
    return _ACTIONS.get(action.get("kind", ""), _unknown)(action, deal, run=None, index=0, dry=True)


def _unknown(action, deal, **_kw) -> dict:
    return {"code": action.get("kind", ""), "error": "unknown"}


def _move(action, deal, *, run, index, dry) -> dict:
    stage = Stage.objects.filter(pk=action.get("stage"), line__funnel_id=deal.stage.line.funnel_id).first()
    if stage is None:
        return {"code": "move", "error": "stage_gone"}
    if not dry:
        deal_to_stage(deal, stage)
    return {"code": "move", "value": stage.name}  # worded when read: a default name in the reader's language


def _transfer(action, deal, *, run, index, dry) -> dict:
    line = Line.objects.filter(pk=action.get("line"), funnel_id=deal.stage.line.funnel_id).first()
    stage = Stage.objects.filter(line=line).order_by("position", "pk").first() if line else None
    if stage is None:
        return {"code": "transfer", "error": "line_gone"}
    if not dry:
        deal_to_stage(deal, stage)
        if line.distribution != Line.Distribution.OFF:  # type: ignore[union-attr]
            distribution.assign_again([deal], line)  # type: ignore[arg-type]
    return {"code": "transfer", "value": line.name}  # type: ignore[union-attr]


def _message(action, deal, *, run, index, dry) -> dict:
    from messenger import outbox

    text = render(action.get("text", ""), deal)
    if not text:
        return {"code": "message", "error": "empty"}
    conversation = outbox.conversation_for(deal.client_id)
    if conversation is None:
        return {"code": "message", "error": "no_chat", "text": text}
    if not dry:
        from .engine import message_key

        outbox.send_automatic(conversation=conversation, text=text, key=message_key(run, index))
    return {"code": "message", "value": conversation.channel.name, "text": text}


def _task(action, deal, *, run, index, dry) -> dict:
    from tasks.models import TaskType
    from tasks.services import task_create_automatic

    task_type = TaskType.objects.filter(pk=action.get("task_type")).first() or TaskType.objects.order_by("pk").first()
    if task_type is None:
        return {"code": "task", "error": "no_type"}
    user = _user(action.get("user")) or deal.responsible
    text = render(action.get("text", ""), deal) or str(task_type)
    deadline = timezone.now() + timedelta(minutes=int(action.get("deadline_minutes") or 60))
    if not dry:
        task_create_automatic(by=run.robot.name, client=deal.client, deal=deal, type=task_type, description=text,
                              responsible=user, deadline=deadline)
    return {"code": "task", "value": f"{task_type}: {text}", "text": activity.utc_iso(deadline)}


def _user(pk) -> User | None:
    if not str(pk or "").isdigit() or int(pk) == 0:
        return None
    return User.objects.filter(pk=int(pk), is_active=True).first()


def _responsible(action, deal, *, run, index, dry) -> dict:
    user = _user(action.get("user"))
    if user is None:
        return {"code": "responsible", "error": "user_gone"}
    if not distribution.may_receive(user, deal.stage.line):
        return {"code": "responsible", "value": str(user), "error": "not_eligible"}
    if not dry:
        deal_give_to(deal, user, by=run.robot.name)
    return {"code": "responsible", "value": str(user)}


def _tag(action, deal, *, run, index, dry) -> dict:
    kind = action["kind"]
    tag = Tag.objects.filter(pk=action.get("tag")).first()
    if tag is None:
        return {"code": kind, "error": "tag_gone"}
    if not dry:
        (deal.tags.add if kind == Robot.Action.TAG_ADD else deal.tags.remove)(tag)
    return {"code": kind, "value": tag.name}


def _notify(action, deal, *, run, index, dry) -> dict:
    ids = {int(u) for u in action.get("users") or [] if str(u).isdigit()}
    users = list(User.objects.filter(pk__in=ids, is_active=True))
    if action.get("responsible") and deal.responsible_id and deal.responsible_id not in ids:
        users.append(deal.responsible)
    text = render(action.get("text", ""), deal)
    if not dry:
        for user in users:
            activity.notify(user=user, kind=Notification.Kind.ROBOT, actor=None, url=deal.get_absolute_url(),
                            params={"about": "notify", "robot": run.robot.name, "deal_id": deal.pk, "deal": deal.name,
                                    **activity.client_params(deal.client)}, text=text)
    return {"code": "notify", "value": ", ".join(str(u) for u in users), "text": text}


_ACTIONS = {
    Robot.Action.MOVE: _move,
    Robot.Action.TRANSFER: _transfer,
    Robot.Action.MESSAGE: _message,
    Robot.Action.TASK: _task,
    Robot.Action.RESPONSIBLE: _responsible,
    Robot.Action.TAG_ADD: _tag,
    Robot.Action.TAG_REMOVE: _tag,
    Robot.Action.NOTIFY: _notify,
}
