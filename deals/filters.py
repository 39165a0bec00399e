"""The board's and the deals table's filters (top panel, seed 000). All combine with AND."""

import django_filters as df
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from clients.filters import ANY, CheckboxList, DateInput, IdListFilter, users
from clients.models import Channel, Lifecycle, Tag
from crm.countries import COUNTRIES

from .models import Deal


class DealFilter(df.FilterSet):
    q = df.CharFilter(label=_("Name, keywords or tags"), method="filter_q")
    stage = IdListFilter(label=_("Stage"), field_name="stage_id")
    created_from = df.DateFilter(label=_("Created from"), field_name="created_at", lookup_expr="date__gte", widget=DateInput)
    created_to = df.DateFilter(label=_("Created to"), field_name="created_at", lookup_expr="date__lte", widget=DateInput)
    registered_from = df.DateFilter(label=_("Registered from"), field_name="registration_date", lookup_expr="gte", widget=DateInput)
    registered_to = df.DateFilter(label=_("Registered to"), field_name="registration_date", lookup_expr="lte", widget=DateInput)
    sale_from = df.DateFilter(label=_("Last sale from"), field_name="last_sale_at", lookup_expr="date__gte", widget=DateInput)
    sale_to = df.DateFilter(label=_("Last sale to"), field_name="last_sale_at", lookup_expr="date__lte", widget=DateInput)
    channel = df.MultipleChoiceFilter(label=_("Channel"), choices=Channel.choices, widget=CheckboxList)
    responsible = IdListFilter(label=_("Responsible"), field_name="responsible_id")
    tags = IdListFilter(label=_("Tags"), method="filter_tags")
    country = df.MultipleChoiceFilter(label=_("Country"), field_name="client__country", choices=COUNTRIES, widget=CheckboxList)
    status = df.ChoiceFilter(label=_("Client status"), field_name="client__lifecycle", choices=Lifecycle.choices, empty_label=ANY)

    class Meta:
        model = Deal
        fields: list[str] = []

    # Filters over a field a card layout may hide: (block, key) of the field.
    LAYOUT_FIELDS = {
        "channel": ("deal", "channel"), "responsible": ("deal", "deal_responsible"),
        "country": ("contact", "country"), "status": ("contact", "lifecycle"),
    }

    def __init__(self, *args, hidden=None, **kwargs):
        """hidden: the user's hidden fields per block (gate.hidden_by_block); their filters go."""
        super().__init__(*args, **kwargs)
        for name, (block, key) in self.LAYOUT_FIELDS.items():
            if hidden is not None and key in hidden[block]:
                del self.filters[name]

    def with_choices(self, stages=()):
        people = [(u.pk, str(u)) for u in users()]
        form = self.form
        if "responsible" in form.fields:
            form.fields["responsible"].widget.choices = people
        form.fields["tags"].widget.choices = [(t.pk, t.name) for t in Tag.objects.all()]
        form.fields["stage"].widget.choices = [(s.pk, str(s)) for s in stages]
        return self

    def filter_q(self, qs, name, value):
        value = value.strip()
        if not value:
            return qs
        tagged = Deal.tags.through.objects.filter(deal_id=OuterRef("pk"), tag__name__icontains=value)
        return qs.filter(Q(name__icontains=value) | Q(client__name__icontains=value) | Exists(tagged))

    def filter_tags(self, qs, name, value):
        if not value:
            return qs
        return qs.filter(Exists(Deal.tags.through.objects.filter(deal_id=OuterRef("pk"), tag_id__in=value)))
