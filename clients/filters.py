"""The clients table's filters (django-filter). All of them combine with AND."""

import django_filters as df
from django import forms
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Concat
from django.db.models.lookups import Contains, IContains, Regex
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.countries import COUNTRIES

from .models import Channel, Client, CustomField, LeadStep, Lifecycle, Priority, Tag
from .phones import digits_of, phone_search

MIN_SEARCH_DIGITS = 3


def users(request=None):
    return get_user_model().objects.filter(is_active=True)


SELECTIVE_PHONE_DIGITS = 4


def is_selective_phone_search(value: str) -> bool:
    """A phone-only search of 4+ digits matches few rows: the trigram index should lead."""
    value = (value or "").strip()
    return len(digits_of(value)) >= SELECTIVE_PHONE_DIGITS and not any(ch.isalpha() for ch in value)


def search_q(value: str, *, indexed: bool = True) -> Q:
    """A name, or any 3+ consecutive digits of a phone (seed 002: name and phone).

    A query with a letter is a name ("Анна 4242" included); digits and phone punctuation
    alone ("+7 916-12") are a phone. Each branch has its own trigram index, and never an OR
    of both: a short digit pattern matches thousands of phones and would drag name searches.
    `indexed=False`: the same condition in a form no index serves, for a walk of the newest
    clients that must not turn into a scan of every match (clients.selectors.search_newest_first).
    """
    value = value.strip()
    if any(ch.isalpha() for ch in value):
        return name_words_q(value, indexed=indexed)
    if len(digits_of(value)) >= MIN_SEARCH_DIGITS:
        return phone_q(value, indexed=indexed)
    return name_words_q(value, indexed=indexed)


def search_box_q(value: str, *, phone_hidden: bool, indexed: bool = True) -> Q:
    """What the search box looks for: names only when the phone is hidden from the user, so that
    no phone is revealed by a match."""
    return name_words_q(value.strip(), indexed=indexed) if phone_hidden else search_q(value, indexed=indexed)


def _unindexed(field: str):
    """The column as an expression no index is on (concatenated with ''), same value."""
    return Concat(F(field), Value(""))


def name_words_q(value: str, field: str = "name", *, indexed: bool = True) -> Q:
    """Every word somewhere in the name, in any order: "Егор Назаров" finds "Назаров Егор".

    An AND of one icontains per word: on PostgreSQL each is UPPER(name::text) LIKE UPPER(…),
    and the trigram index on that expression answers all of them in one bitmap scan.
    """
    query = Q()
    for word in dict.fromkeys(value.split()):
        query &= Q(**{f"{field}__icontains": word}) if indexed else Q(IContains(_unindexed(field), word))
    return query


def phone_q(value: str, *, indexed: bool = True) -> Q:
    """A phone or a fragment of one, as clients.phones.phone_search reads it (an empty Q: no digits).

    The trigram index on phone_digits serves each pattern. "Begins with" is one regular
    expression (the column holds every phone, space separated): two LIKEs, 'd%' OR '% d%', read
    the index twice, and their word-start trigrams match nearly every row (3x slower at 1M rows).
    """
    search = phone_search(value)
    query = Q()
    for digits in search.anywhere:
        query |= Q(phone_digits__contains=digits) if indexed else Q(Contains(_unindexed("phone_digits"), digits))
    for digits in search.at_start:
        pattern = f"(^| ){digits}"
        query |= Q(phone_digits__regex=pattern) if indexed else Q(Regex(_unindexed("phone_digits"), pattern))
    return query


class DateInput(forms.DateInput):
    input_type = "date"


class CheckboxList(forms.CheckboxSelectMultiple):
    """Several choices as ticks in a scrolling box: no Ctrl-click needed."""


class IdListField(forms.Field):
    """Several record ids from repeated query parameters, checked without a database query.

    Filtering by an id the user cannot see simply matches nothing; the filter panel fills the
    widget's choices itself, so the table page spends no query validating them.
    """

    widget = CheckboxList

    def __init__(self, *, choices=(), **kwargs):
        super().__init__(**kwargs)
        self.widget.choices = choices

    def to_python(self, value):
        if not value:
            return []
        if not isinstance(value, (list, tuple)):
            value = [value]
        try:
            return [int(v) for v in value if str(v).strip()]
        except (TypeError, ValueError):
            raise forms.ValidationError(_("Choose from the list."), code="invalid") from None


class IdListFilter(df.Filter):
    field_class = IdListField

    def filter(self, qs, value):
        return qs.filter(**{f"{self.field_name}__in": value}) if value else qs


class JsonNumberFilter(df.NumberFilter):
    """A number compared with a custom field's JSON value (JSON has no Decimal)."""

    def filter(self, qs, value):
        return super().filter(qs, float(value) if value is not None else None)


class CustomChoiceFilter(df.MultipleChoiceFilter):
    """A selector custom field: JSON containment on PostgreSQL, so the GIN index serves it."""

    def __init__(self, *args, key: str, **kwargs):
        self.key = key
        super().__init__(*args, field_name=f"custom__{key}", **kwargs)

    def filter(self, qs, value):
        if not value:
            return qs
        query = Q()
        for choice in value:
            if connection.vendor == "postgresql":
                query |= Q(custom__contains={self.key: choice})
            else:
                query |= Q(**{f"custom__{self.key}": choice})
        return qs.filter(query)


class IdFilter(df.NumberFilter):
    def filter(self, qs, value):
        return qs.filter(**{self.field_name: int(value)}) if value is not None else qs


# A select filter's empty choice: the filter is not applied (not django-filter's "---------").
ANY = pgettext_lazy("a filter's empty choice", "Any")


class ClientFilter(df.FilterSet):
    q = df.CharFilter(label=_("Search"), method="filter_q")
    tab = df.ChoiceFilter(label=_("Status"), field_name="lifecycle", choices=Lifecycle.choices, empty_label=ANY)
    name = df.CharFilter(label=_("Client or deal name"), method="filter_name")
    deal_stage = IdListFilter(label=_("Deal stage"), method="filter_deal_stage")
    phone = df.CharFilter(label=_("Phone"), method="filter_phone")
    email = df.CharFilter(label=_("Email"), lookup_expr="icontains")
    company = df.CharFilter(label=_("Company"), lookup_expr="icontains")
    city = df.CharFilter(label=_("City"), lookup_expr="icontains")
    address = df.CharFilter(label=_("Address"), lookup_expr="icontains")
    external_id = df.CharFilter(label=_("Player ID"), lookup_expr="iexact")
    created_from = df.DateFilter(label=_("Created from"), field_name="created_at", lookup_expr="date__gte", widget=DateInput)
    created_to = df.DateFilter(label=_("Created to"), field_name="created_at", lookup_expr="date__lte", widget=DateInput)
    modified_from = df.DateFilter(label=_("Modified from"), field_name="modified_at", lookup_expr="date__gte", widget=DateInput)
    modified_to = df.DateFilter(label=_("Modified to"), field_name="modified_at", lookup_expr="date__lte", widget=DateInput)
    registered_from = df.DateFilter(label=_("Registered from"), field_name="registration_date", lookup_expr="gte", widget=DateInput)
    registered_to = df.DateFilter(label=_("Registered to"), field_name="registration_date", lookup_expr="lte", widget=DateInput)
    responsible = IdListFilter(label=_("Responsible"), field_name="responsible_id")
    created_by = IdFilter(label=_("Created by"), field_name="created_by_id", widget=forms.Select)
    modified_by = IdFilter(label=_("Modified by"), field_name="modified_by_id", widget=forms.Select)
    tags = IdListFilter(label=_("Tags"), method="filter_tags")
    country = df.MultipleChoiceFilter(label=_("Country"), choices=COUNTRIES, widget=CheckboxList)
    channel = df.MultipleChoiceFilter(label=_("Channel"), choices=Channel.choices, widget=CheckboxList)
    priority = df.MultipleChoiceFilter(label=_("Priority"), choices=Priority.choices, widget=CheckboxList)
    step = IdListFilter(label=_("Step"), method="filter_step")  # seed 004: the lead's step

    class Meta:
        model = Client
        fields: list[str] = []

    # the field each filter reads: a field hidden from the user takes its filters with it
    FILTER_FIELD = {
        "phone": "phone", "email": "email", "company": "company", "city": "city", "address": "address",
        "external_id": "external_id", "registered_from": "registration_date", "registered_to": "registration_date",
        "responsible": "responsible", "country": "country", "channel": "channel", "priority": "priority",
    }

    def __init__(self, *args, custom_fields=None, hidden=(), **kwargs):
        super().__init__(*args, **kwargs)
        hidden = set(hidden)
        self.phone_hidden = "phone" in hidden  # then digits search names only: no phone is revealed by a match
        for field in custom_fields or []:
            if field.key not in hidden:
                self.filters.update(custom_field_filters(field))
        for name, key in self.FILTER_FIELD.items():
            if key in hidden:
                self.filters.pop(name, None)

    request_user = None

    def with_choices(self, user=None):
        """Fill the user, tag and stage choices (for the filter panel and the search form)."""
        from deals.selectors import stage_choices_for  # used below

        self.request_user = user
        people = [(u.pk, str(u)) for u in users()]
        form = self.form
        if "responsible" in form.fields:
            form.fields["responsible"].widget.choices = people
        form.fields["created_by"].widget.choices = [("", ANY), *people]
        form.fields["modified_by"].widget.choices = [("", ANY), *people]
        form.fields["tags"].widget.choices = [(t.pk, t.name) for t in Tag.objects.all()]
        if "step" in form.fields:
            form.fields["step"].widget.choices = [(s.pk, s.label) for s in LeadStep.objects.all()]
        if user is not None:
            form.fields["deal_stage"].widget.choices = [
                (stage_id, f"{group} · {label}") for group, stages in stage_choices_for(user) for stage_id, label in stages
            ]
        return self

    def filter_q(self, qs, name, value):
        if not value.strip():
            return qs
        return qs.filter(search_box_q(value, phone_hidden=self.phone_hidden))

    def qs_without_search(self):
        """The queryset with every filter but the search box's (call is_valid() first)."""
        queryset = self.queryset
        for name, value in self.form.cleaned_data.items():
            if name != "q":
                queryset = self.filters[name].filter(queryset, value)
        return queryset

    def filter_name(self, qs, name, value):
        from deals.models import Deal

        value = value.strip()
        if not value:
            return qs
        words = name_words_q(value)  # the client's or one deal's name has every word
        deals = Deal.objects.filter(words, client_id=OuterRef("pk"), deleted_at__isnull=True)
        return qs.filter(words | Exists(deals))

    def filter_deal_stage(self, qs, name, value):
        from deals.models import Deal

        if not value:
            return qs
        return qs.filter(Exists(Deal.objects.filter(client_id=OuterRef("pk"), deleted_at__isnull=True, stage_id__in=value)))

    def filter_phone(self, qs, name, value):
        query = phone_q(value)
        return qs.filter(query) if query else qs

    def filter_step(self, qs, name, value):
        """Clients at the chosen steps; a potential client nobody has moved yet (no step stored)
        stands at the first step (clients.leads.current_step), so the first step finds them too."""
        if not value:
            return qs
        query = Q(step_id__in=value)
        first = LeadStep.objects.order_by("position", "pk").values_list("pk", flat=True).first()
        if first is not None and first in value:
            query |= Q(step__isnull=True, lifecycle=Lifecycle.POTENTIAL)
        return qs.filter(query)

    def filter_tags(self, qs, name, value):
        # EXISTS, not a join: a client with two chosen tags must not appear twice.
        if not value:
            return qs
        through = Client.tags.through
        return qs.filter(
            Exists(through.objects.filter(client_id=OuterRef("pk"), tag_id__in=value))
        )


def custom_field_filters(field: CustomField) -> dict[str, df.Filter]:
    """The filter(s) for one custom field, named after its column key."""
    path = f"custom__{field.key}"
    key = field.column_key
    label = field.label
    if field.kind == CustomField.Kind.SELECT:
        choices = [(v, v) for v in field.choices]
        return {key: CustomChoiceFilter(label=label, key=field.key, choices=choices, widget=CheckboxList)}
    if field.kind == CustomField.Kind.NUMBER:
        return {
            f"{key}_min": JsonNumberFilter(label=f"{label} ≥", field_name=path, lookup_expr="gte"),
            f"{key}_max": JsonNumberFilter(label=f"{label} ≤", field_name=path, lookup_expr="lte"),
        }
    if field.kind == CustomField.Kind.DATE:
        return {
            f"{key}_from": df.CharFilter(label=f"{label} ≥", field_name=path, lookup_expr="gte", widget=DateInput),
            f"{key}_to": df.CharFilter(label=f"{label} ≤", field_name=path, lookup_expr="lte", widget=DateInput),
        }
    return {key: df.CharFilter(label=label, field_name=path, lookup_expr="icontains")}
