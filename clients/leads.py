"""Leads (seed 004, «Потенциальные клиенты»): the ordered steps an admin configures, a lead's step
set by a click on its progress bar, notes and actions written at a step, today's actions, and the
conversion of a lead into a customer (or its link to an existing customer), undoable by an admin.

Reads first (selectors), then the writes (services): each write asks the gate first, owns its
transaction and writes the client's feed entries in it."""

from dataclasses import dataclass, field
from datetime import date, datetime, time

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from crm import activity
from crm import permissions as gate
from crm.models import Activity

from . import services
from .filters import name_words_q, phone_q
from .models import Client, LeadConversion, LeadStep, Lifecycle
from .phones import digits_of

STEP_NAME_MAX = 40
HISTORY_PER_STEP = 20  # the newest notes and actions each step of the card lists
TODAY_BLOCK = 5  # actions the tasks page's "Today's actions" block lists
LINK_RESULTS = 10
# What a conversion's form writes, and what an undo puts back (LeadConversion.before).
CONVERSION_FIELDS = [
    "name", "phone", "extra_phones", "email", "city", "address", "company", "source", "registration_date",
    "external_id", "custom", "lifecycle",
]


# Steps -----------------------------------------------------------------------------------------


def steps_all() -> list[LeadStep]:
    return list(LeadStep.objects.all())


def step_or_404(pk) -> LeadStep:
    step = LeadStep.objects.filter(pk=pk).first()
    if step is None:
        raise Http404
    return step


def steps_in_use() -> dict[int, int]:
    """How many clients (deleted ones included: Client.step is PROTECT) stand at each step."""
    from django.db.models import Count

    return dict(Client.objects.filter(step__isnull=False).values_list("step").annotate(n=Count("pk")).values_list("step", "n"))


def current_step(client: Client, steps: list[LeadStep]) -> LeadStep | None:
    """The lead's step; a lead nobody has moved yet stands at the first one."""
    if client.step_id is not None:
        return next((s for s in steps if s.pk == client.step_id), None)
    return steps[0] if steps else None


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if len(name) > STEP_NAME_MAX:
        raise ValidationError(_("A step's name can have at most %(n)s characters.") % {"n": STEP_NAME_MAX})
    return name


@transaction.atomic
def step_add(*, actor, name: str) -> LeadStep:
    gate.require(actor, gate.CONFIGURE_FIELDS)
    name = _clean_name(name)
    if not name:
        raise ValidationError(_("Give the step a name."))
    last = LeadStep.objects.aggregate(m=Max("position"))["m"] or 0
    return LeadStep.objects.create(name=name, position=last + 1)


@transaction.atomic
def step_rename(*, actor, step: LeadStep, name: str) -> LeadStep:
    """A new name; an empty one gives a default step back its own name (in each reader's language)."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    name = _clean_name(name)
    if step.system_key and name == str(LeadStep.DEFAULTS.get(step.system_key, "")):
        name = ""  # the default name as the form showed it: keep it translated for every reader
    if not name and not step.system_key:
        raise ValidationError(_("Give the step a name."))
    LeadStep.objects.filter(pk=step.pk).update(name=name)
    step.name = name
    return step


@transaction.atomic
def step_move(*, actor, step: LeadStep, offset: int) -> None:
    """One place up (offset -1) or down (+1); the steps are renumbered 1..n in the new order."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    steps = list(LeadStep.objects.select_for_update().order_by("position", "pk"))
    index = next((i for i, s in enumerate(steps) if s.pk == step.pk), None)
    if index is None:
        raise Http404
    target = index + offset
    if 0 <= target < len(steps) and offset:
        steps.insert(target, steps.pop(index))
    _renumber(steps)


@transaction.atomic
def steps_reorder(*, actor, order: list[int]) -> None:
    """The steps in the order given (a drag); ids not given keep their order after those given."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    steps = list(LeadStep.objects.select_for_update().order_by("position", "pk"))
    rank = {pk: i for i, pk in enumerate(order)}
    steps.sort(key=lambda s: (rank.get(s.pk, len(rank)), s.position, s.pk))
    _renumber(steps)


def _renumber(steps: list[LeadStep]) -> None:
    changed = []
    for position, step in enumerate(steps, 1):
        if step.position != position:
            step.position = position
            changed.append(step)
    LeadStep.objects.bulk_update(changed, ["position"])


@transaction.atomic
def step_delete(*, actor, step: LeadStep) -> None:
    """Delete a step nobody stands at; refused (a clear message) while clients are there."""
    gate.require(actor, gate.CONFIGURE_FIELDS)
    locked = LeadStep.objects.select_for_update().filter(pk=step.pk).first()
    if locked is None:
        raise Http404
    used = Client.objects.filter(step=locked).count()
    if used:
        raise ValidationError(ngettext(
            "%(n)s client is at the step “%(step)s”: move them to another step first.",
            "%(n)s clients are at the step “%(step)s”: move them to another step first.", used,
        ) % {"n": used, "step": locked.label})
    if LeadStep.objects.count() <= 1:
        raise ValidationError(_("Leads need at least one step."))
    locked.delete()


# A lead's step ---------------------------------------------------------------------------------


@transaction.atomic
def step_set(*, actor, client: Client, step: LeadStep) -> Client:
    """Set a potential client's step (a click on the progress bar), with a feed entry old → new."""
    gate.require(actor, gate.CHANGE_CLIENT)
    current = Client.objects.select_for_update(of=("self",)).select_related("step").get(pk=client.pk)
    if current.is_deleted:
        raise PermissionDenied
    if current.lifecycle != Lifecycle.POTENTIAL:
        raise ValidationError(_("Only a potential client moves through the steps."))
    if current.step_id == step.pk:
        return current
    here = current_step(current, steps_all())  # a lead nobody moved yet was at the first step
    old = here.label if here is not None else ""
    Client.objects.filter(pk=current.pk).update(step=step, modified_by=actor, modified_at=timezone.now())
    activity.record(client_id=current.pk, actor=actor, kind=Activity.Kind.STEP, field="step", field_label=_("Step"),
                    old=old, new=step.label)
    current.refresh_from_db()
    return current


# Notes and actions at a step -------------------------------------------------------------------


def planned_deadline(day: date) -> datetime:
    """An action planned for a day is due by the end of that day, in the user's time zone."""
    return timezone.make_aware(datetime.combine(day, time(23, 59)))


def note_or_action_add(*, actor, client: Client, text: str, action_type=None, planned: date | None = None):
    """Seed 004: text alone is a *note* (a comment at the lead's current step); with an action type
    and a planned date it is an *action* (a task at that step, the author responsible). Either
    way the client's «Последнее действие» moves to now. Returns the comment entry or the task."""
    if (action_type is None) != (planned is None):
        raise ValidationError(_("An action needs both an action type and a planned date; "
                                "for a note, leave both empty."))
    from tasks import services as task_services
    from tasks.models import Task

    with transaction.atomic():
        step = current_step(client, steps_all())
        made: Activity | Task
        if action_type is None or planned is None:
            made = services.comment_add(actor=actor, client=client, text=text, step_id=step.pk if step else None)
        else:
            made = task_services.task_create(actor=actor, client=client, type=action_type, description=text,
                                             responsible=actor, deadline=planned_deadline(planned),
                                             step=step)
        Client.objects.filter(pk=client.pk).update(last_action_at=timezone.now())
    return made


@dataclass
class StepHistory:
    step: LeadStep
    current: bool = False
    done: bool = False  # a step before the current one
    entries: list = field(default_factory=list)  # notes (Activity) and actions (Task), newest first


def lead_context(user, client: Client) -> dict:
    """The card's lead block: the steps (the progress bar), each step's notes and actions, and the
    client's conversions (as a lead, or as the customer leads were linked to). Five queries."""
    from tasks.models import Task

    steps = steps_all()
    here = current_step(client, steps)
    history = {s.pk: StepHistory(step=s, current=here is not None and s.pk == here.pk) for s in steps}
    passed = True
    for s in steps:
        if here is not None and s.pk == here.pk:
            passed = False
        history[s.pk].done = passed and here is not None
    notes = (Activity.objects.filter(client=client, kind=Activity.Kind.COMMENT, step_id__isnull=False)
             .select_related("actor").order_by("-pk")[:HISTORY_PER_STEP * max(len(steps), 1)])
    for note in notes:
        note.is_action = False  # type: ignore[attr-defined]
        if note.step_id in history:
            history[note.step_id].entries.append(note)
    if gate.can(user, gate.VIEW_TASKS):
        actions = (gate.visible_tasks(user).filter(client=client, step__isnull=False)
                   .select_related("type", "responsible").order_by("-created_at", "-pk")[:HISTORY_PER_STEP * max(len(steps), 1)])
        now = timezone.now()
        for task in actions:
            task.is_action = True
            task.is_overdue = task.status == Task.Status.OPEN and task.deadline < now
            if task.step_id in history:
                history[task.step_id].entries.append(task)
    for h in history.values():
        h.entries.sort(key=lambda e: e.created_at, reverse=True)
        del h.entries[HISTORY_PER_STEP:]
    visible = gate.visible_clients(user)
    conversions = list(
        LeadConversion.objects.filter(undone_at__isnull=True)
        .filter(Q(client=client, customer__isnull=True) | Q(client=client, customer__in=visible) | Q(customer=client, client__in=visible))
        .select_related("client", "customer", "by").order_by("-at", "-pk")
    )
    mine = next((c for c in conversions if c.client_id == client.pk), None)
    return {
        "lead_steps": steps,
        "lead_step": here,
        "lead_history": [history[s.pk] for s in steps],
        "lead_has_history": any(h.entries for h in history.values()),
        "lead_is_potential": client.lifecycle == Lifecycle.POTENTIAL and not client.is_deleted,
        "lead_at_last_step": bool(steps) and here is not None and here.pk == steps[-1].pk,
        "lead_conversion": mine,
        "linked_leads": [c for c in conversions if c.customer_id == client.pk and c.client_id != client.pk],
    }


# Today's actions -------------------------------------------------------------------------------


def todays_actions(user, *, mine: bool = False, limit: int | None = None) -> tuple[list, int]:
    """The actions (tasks at a lead's step) planned for today in the user's time zone: their own
    for a manager, everyone's the gate lets them see for an admin (mine=True: their own), only of
    clients they may see. Returns (rows, how many in all)."""
    from tasks.selectors import day_bounds

    if not (gate.can(user, gate.VIEW_TASKS) and gate.can(user, gate.VIEW_CLIENTS)):
        return [], 0
    start, end = day_bounds(timezone.localdate())
    qs = (gate.visible_tasks(user).filter(step__isnull=False, deadline__gte=start, deadline__lt=end)
          .filter(client__in=gate.visible_clients(user).values("pk")))
    if mine:
        qs = qs.filter(responsible=user)
    # open ones first ("open" sorts after "done"), then by the time planned
    qs = qs.select_related("client", "type", "responsible", "step").order_by("-status", "deadline", "pk")
    if limit is None:
        rows = list(qs)
        return rows, len(rows)
    return list(qs[:limit]), qs.count()


# Conversion ------------------------------------------------------------------------------------


def _as_json(value):
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return type(value)(value)
    return value


def _from_json(name: str, value):
    if name == "registration_date":
        return date.fromisoformat(value) if value else None
    return value


def _check_convertible(current: Client) -> None:
    if current.is_deleted:
        raise PermissionDenied
    if current.lifecycle != Lifecycle.POTENTIAL:
        raise ValidationError(_("This client is converted already."))
    steps = steps_all()
    if not steps or current_step(current, steps) != steps[-1]:
        raise ValidationError(_("A lead is converted at the last step: move it there first."))


@transaction.atomic
def convert(*, actor, client: Client, data: dict, seen_modified=None) -> LeadConversion:
    """The lead becomes a customer: the form's values (its data, the customer account) are saved
    on the same client record (deals, tasks, messages and feed stay where they are), the status
    becomes Converted, and the conversion keeps who, when, from which step and the values before."""
    gate.require(actor, gate.CHANGE_CLIENT)
    current = Client.objects.select_for_update(of=("self",)).select_related("step").get(pk=client.pk)
    _check_convertible(current)
    data = {**data, "lifecycle": Lifecycle.CONVERTED}
    before = {name: _as_json(getattr(current, name)) for name in CONVERSION_FIELDS if name in data}
    step = current_step(current, steps_all())
    services.client_update(actor=actor, client=current, data=data, seen_modified=seen_modified)
    conversion = LeadConversion.objects.create(
        client=current, kind=LeadConversion.Kind.CONVERTED, from_step=step, step_label=step.label if step else "",
        before=before, by=actor,
    )
    activity.record(client_id=current.pk, actor=actor, kind=Activity.Kind.CONVERSION, field="converted",
                    old=conversion.step_label, new=data.get("external_id", ""))
    return conversion


def customers_matching(user, query: str, *, exclude: Client) -> list[Client]:
    """Converted clients the user may see, by name, any 3+ phone digits, e-mail or customer
    account (external ID): the "Link to an existing customer" search."""
    query = " ".join((query or "").split())
    if len(query) < 2:
        return []
    condition = Q(external_id__iexact=query) | Q(email__iexact=query)
    if "@" in query:
        condition |= Q(email__icontains=query)
    else:
        condition |= name_words_q(query) | Q(external_id__istartswith=query)
        if len(digits_of(query)) >= 3 and not any(ch.isalpha() for ch in query):
            condition |= phone_q(query)
    qs = gate.visible_clients(user).filter(lifecycle=Lifecycle.CONVERTED).exclude(pk=exclude.pk).filter(condition)
    return list(qs.order_by("name", "pk")[:LINK_RESULTS])


@transaction.atomic
def link(*, actor, client: Client, customer: Client) -> LeadConversion:
    """The lead is an existing customer: linked to that client (no second record), the lead
    becomes Converted, a feed entry on both."""
    gate.require(actor, gate.CHANGE_CLIENT)
    first, second = sorted([client.pk, customer.pk])  # locks in a fixed order
    locked = {c.pk: c for c in Client.objects.select_for_update(of=("self",)).select_related("step").filter(pk__in=[first, second]).order_by("pk")}
    current, target = locked[client.pk], locked.get(customer.pk)
    if target is None or target.is_deleted or target.pk == current.pk:
        raise Http404
    if target.lifecycle != Lifecycle.CONVERTED:
        raise ValidationError(_("Choose a converted client: a lead is linked to an existing customer."))
    _check_convertible(current)
    step = current_step(current, steps_all())
    before = {"lifecycle": current.lifecycle}
    services.client_update(actor=actor, client=current, data={"lifecycle": Lifecycle.CONVERTED})
    conversion = LeadConversion.objects.create(
        client=current, kind=LeadConversion.Kind.LINKED, customer=target, from_step=step,
        step_label=step.label if step else "", before=before, by=actor,
    )
    activity.record(client_id=current.pk, actor=actor, kind=Activity.Kind.CONVERSION, field="linked",
                    old=conversion.step_label, new=target.name, text=str(target.pk))
    activity.record(client_id=target.pk, actor=actor, kind=Activity.Kind.CONVERSION, field="linked_lead",
                    new=current.name, text=str(current.pk))
    return conversion


@transaction.atomic
def conversion_undo(*, actor, client: Client) -> LeadConversion:
    """An admin (gate.RESTORE_CLIENT, as for restoring a deleted client) undoes the client's
    conversion or link: the values before it come back, the status is Potential again, and the
    conversion is marked undone (kept, with who undid it)."""
    gate.require(actor, gate.RESTORE_CLIENT)
    current = Client.objects.select_for_update().get(pk=client.pk)
    if current.is_deleted:
        raise PermissionDenied
    conversion = (LeadConversion.objects.select_for_update().filter(client=current, undone_at__isnull=True)
                  .order_by("-at", "-pk").first())
    if conversion is None:
        raise ValidationError(_("There is no conversion to undo."))
    data = {name: _from_json(name, value) for name, value in conversion.before.items() if name in CONVERSION_FIELDS}
    data.setdefault("lifecycle", Lifecycle.POTENTIAL)
    services.client_update(actor=actor, client=current, data=data)
    LeadConversion.objects.filter(pk=conversion.pk).update(undone_at=timezone.now(), undone_by=actor)
    conversion.refresh_from_db()
    activity.record(client_id=current.pk, actor=actor, kind=Activity.Kind.CONVERSION, field="undone",
                    old=conversion.get_kind_display())
    if conversion.customer_id:
        activity.record(client_id=conversion.customer_id, actor=actor, kind=Activity.Kind.CONVERSION,
                        field="unlinked_lead", new=current.name, text=str(current.pk))
    return conversion

