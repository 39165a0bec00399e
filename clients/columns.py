"""The clients table's columns: system ones plus one per custom field."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _

from crm.formatting import Formatter

from .models import CustomField
from .phones import format_phone

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

DEFAULT_COLUMNS = ["name", "phone", "email", "responsible", "tags", "lifecycle", "modified_at"]


@dataclass(frozen=True)
class Column:
    key: str
    label: "StrOrPromise"
    # (a client or its values as a named tuple, the page's Formatter) -> display value
    value: Callable[[Any, Formatter], Any]
    needs: str = ""  # a related name to select or prefetch when the column is shown
    reads: str = ""  # the client field value() reads, when it is not the field named `key`

    @property
    def field(self) -> str:
        return self.reads or self.key


SYSTEM_COLUMNS = [
    Column("name", _("Full name"), lambda c, f: c.name),
    Column("phone", _("Phone"), lambda c, f: format_phone(c.phone)),
    Column("email", _("Email"), lambda c, f: c.email),
    Column("responsible", _("Responsible"), lambda c, f: c.responsible or "", "responsible"),
    Column("tags", _("Tags"), lambda c, f: list(c.tags.all()), "tags"),
    Column("lifecycle", _("Status"), lambda c, f: f.label("lifecycle", c.lifecycle)),
    Column("priority", _("Priority"), lambda c, f: f.label("priority", c.priority)),
    Column("company", _("Company"), lambda c, f: c.company),
    Column("country", _("Country"), lambda c, f: f.label("country", c.country)),
    Column("city", _("City"), lambda c, f: c.city),
    Column("channel", _("Channel"), lambda c, f: f.label("channel", c.channel)),
    Column("source", _("Source"), lambda c, f: c.source),
    Column("external_id", _("Player ID"), lambda c, f: c.external_id),
    Column("registration_date", _("Registration date"), lambda c, f: f.date(c.registration_date)),
    Column("sales_count", _("Sales count"), lambda c, f: c.sales_count),
    Column("sales_sum", _("Sales sum"), lambda c, f: f.number(c.sales_sum, 0)),
    Column("last_sale_at", _("Last sale date"), lambda c, f: f.datetime(c.last_sale_at)),
    Column("created_at", _("Created"), lambda c, f: f.datetime(c.created_at)),
    Column("modified_at", _("Modified"), lambda c, f: f.datetime(c.modified_at)),
    Column("created_by", _("Created by"), lambda c, f: c.created_by or "", "created_by"),
    Column("modified_by", _("Modified by"), lambda c, f: c.modified_by or "", "modified_by"),
    # Seed 004's «Шаг» and «Последнее действие»; the step's label is put in by the selectors (step_labels)
    Column("step", _("Step"), lambda c, f: c.step_id or "", reads="step_id"),
    Column("last_action_at", _("Last action"), lambda c, f: f.datetime(c.last_action_at)),
]


def step_labels() -> dict[int, str]:
    """Every lead step's label in the reader's language (one query; there are a handful)."""
    from .models import LeadStep

    return {step.pk: step.label for step in LeadStep.objects.all()}


STEP_READS = ("step_id", "lifecycle")  # what step_cell reads of a row


def step_cell() -> Callable[[Any], str]:
    """The Step column's value of a row (with STEP_READS): its step's label; a potential client
    nobody has moved yet (no step stored) stands at the first step, as its card says
    (clients.leads.current_step); a converted client with none has none."""
    from .models import Lifecycle

    names = step_labels()
    first = next(iter(names.values()), "")

    def step(row) -> str:
        if row.step_id is None:
            return first if row.lifecycle == Lifecycle.POTENTIAL else ""
        return names.get(row.step_id, "")

    return step


def custom_column(field: CustomField) -> Column:
    key = field.key
    return Column(field.column_key, field.label, lambda c, f: c.custom.get(key, ""), reads="custom")


def all_columns(custom_fields) -> dict[str, Column]:
    columns = {c.key: c for c in SYSTEM_COLUMNS}
    for field in custom_fields:
        columns[field.column_key] = custom_column(field)
    return columns


def chosen_columns(saved: list[str] | None, available: dict[str, Column]) -> list[Column]:
    """The user's columns in their order; unknown keys (a deleted field) are dropped."""
    keys = [k for k in (saved or DEFAULT_COLUMNS) if k in available]
    if "name" not in keys:
        keys.insert(0, "name")  # the name links to the card: it is always shown
    return [available[k] for k in keys]
