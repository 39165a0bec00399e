"""The clients table's columns: system ones plus one per custom field."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from .labels import label
from .models import CustomField
from .phones import format_phone

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

DEFAULT_COLUMNS = ["name", "phone", "email", "responsible", "tags", "lifecycle", "modified_at"]


@dataclass(frozen=True)
class Column:
    key: str
    label: "StrOrPromise"
    value: Callable  # a client (or its values as a named tuple) -> display value
    needs: str = ""  # a related name to select or prefetch when the column is shown
    reads: str = ""  # the client field value() reads, when it is not the field named `key`

    @property
    def field(self) -> str:
        return self.reads or self.key


def _date(value):
    return formats.date_format(value, "SHORT_DATE_FORMAT") if value else ""


def _datetime(value):
    """In the reader's time zone (the active one), not the database's UTC."""
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT") if value else ""


SYSTEM_COLUMNS = [
    Column("name", _("Full name"), lambda c: c.name),
    Column("phone", _("Phone"), lambda c: format_phone(c.phone)),
    Column("email", _("Email"), lambda c: c.email),
    Column("responsible", _("Responsible"), lambda c: c.responsible or "", "responsible"),
    Column("tags", _("Tags"), lambda c: list(c.tags.all()), "tags"),
    Column("lifecycle", _("Status"), lambda c: label("lifecycle", c.lifecycle)),
    Column("priority", _("Priority"), lambda c: label("priority", c.priority)),
    Column("company", _("Company"), lambda c: c.company),
    Column("country", _("Country"), lambda c: label("country", c.country)),
    Column("city", _("City"), lambda c: c.city),
    Column("channel", _("Channel"), lambda c: label("channel", c.channel)),
    Column("source", _("Source"), lambda c: c.source),
    Column("external_id", _("Player ID"), lambda c: c.external_id),
    Column("registration_date", _("Registration date"), lambda c: _date(c.registration_date)),
    Column("sales_count", _("Sales count"), lambda c: c.sales_count),
    Column("sales_sum", _("Sales sum"), lambda c: formats.number_format(c.sales_sum, 0, use_l10n=True, force_grouping=True)),
    Column("last_sale_at", _("Last sale date"), lambda c: _datetime(c.last_sale_at)),
    Column("created_at", _("Created"), lambda c: _datetime(c.created_at)),
    Column("modified_at", _("Modified"), lambda c: _datetime(c.modified_at)),
    Column("created_by", _("Created by"), lambda c: c.created_by or "", "created_by"),
    Column("modified_by", _("Modified by"), lambda c: c.modified_by or "", "modified_by"),
    # Seed 004's «Шаг» and «Последнее действие»; the step's label is put in by the selectors (step_labels)
    Column("step", _("Step"), lambda c: c.step_id or "", reads="step_id"),
    Column("last_action_at", _("Last action"), lambda c: _datetime(c.last_action_at)),
]


def step_labels() -> dict[int, str]:
    """Every lead step's label in the reader's language (one query; there are a handful)."""
    from .models import LeadStep

    return {step.pk: step.label for step in LeadStep.objects.all()}


def custom_column(field: CustomField) -> Column:
    key = field.key
    return Column(field.column_key, field.label, lambda c: c.custom.get(key, ""), reads="custom")


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
