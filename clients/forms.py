from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from .models import TEXT_FIELD_MAX, Client, CustomField, Tag
from .phones import format_phone, normalize_phone, split_phones
from .selectors import custom_field_in_use

if TYPE_CHECKING:
    from django.http import QueryDict

    from deals.models import Deal


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


def custom_form_field(field: CustomField, current=None) -> forms.Field:
    """The form field for one admin-defined client field.

    A selector keeps a stored value that is no longer in its list, so saving the form never
    erases it unnoticed.
    """
    common: dict[str, Any] = {"label": field.label, "required": False}
    if field.kind == CustomField.Kind.NUMBER:
        return forms.DecimalField(max_digits=18, decimal_places=4, **common)
    if field.kind == CustomField.Kind.DATE:
        return forms.DateField(widget=DateInput, **common)
    if field.kind == CustomField.Kind.SELECT:
        choices = [("", "—")] + [(v, v) for v in field.choices]
        if current not in (None, "") and current not in field.choices:
            choices.append((current, _("%(value)s (no longer in the list)") % {"value": current}))
        return forms.ChoiceField(choices=choices, **common)
    return forms.CharField(max_length=TEXT_FIELD_MAX, **common)


def to_json_value(value):
    if value in (None, ""):
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


class CustomFieldsMixin:
    """Adds the admin-defined fields to a ModelForm whose model keeps them in .custom."""

    # The ModelForm's, declared for the type checker.
    instance: "Client | Deal"
    cleaned_data: dict[str, Any]

    def add_custom_fields(self, custom_fields):
        self.custom_fields = list(custom_fields)
        for field in self.custom_fields:
            current = self.instance.custom.get(field.key) if self.instance.pk else None
            form_field = custom_form_field(field, current)
            form_field.initial = current
            self.fields[field.column_key] = form_field

    def custom_values(self) -> dict:
        """The custom field values, merged over what the record had (deleted fields keep theirs)."""
        values = dict(self.instance.custom or {}) if self.instance.pk else {}
        for field in self.custom_fields:
            value = to_json_value(self.cleaned_data.get(field.column_key))
            if value is None:
                values.pop(field.key, None)
            else:
                values[field.key] = value
        return values

    def custom_bound_fields(self):
        return [self[f.column_key] for f in self.custom_fields]


class ClientForm(CustomFieldsMixin, forms.ModelForm):
    extra_phones_text = forms.CharField(
        label=_("Other phones"), required=False, max_length=200,
        help_text=_("Separate several numbers with commas."),
    )
    tags = forms.ModelMultipleChoiceField(
        label=_("Tags"), queryset=Tag.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )
    # When the editor opened the client: a save in between is not silently overwritten.
    seen_modified = forms.DateTimeField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Client
        fields = [
            "name", "responsible", "phone", "email", "lifecycle", "priority", "company", "country",
            "city", "address", "channel", "source", "external_id", "registration_date", "tags",
        ]
        widgets = {"registration_date": DateInput}

    def __init__(self, *args, custom_fields=(), can_change_responsible=True, locked=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.locked = set(locked)
        self.fields["responsible"].queryset = get_user_model().objects.filter(is_active=True)
        self.fields["name"].widget.attrs.update({"maxlength": 30, "autofocus": True})
        if not can_change_responsible:
            self.fields["responsible"].disabled = True
        if self.instance.pk:
            self.fields["extra_phones_text"].initial = ", ".join(
                format_phone(p) for p in self.instance.extra_phones
            )
            self.initial["phone"] = format_phone(self.instance.phone)
        if self.instance.pk:
            self.fields["seen_modified"].initial = self.instance.modified_at
        self.add_custom_fields([f for f in custom_fields if f.key not in self.locked])
        # Fields the Manager layout hides or makes read-only are not in the form at all.
        for key in self.locked:
            self.fields.pop({"extra_phones": "extra_phones_text"}.get(key, key), None)

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise ValidationError(_("Enter the client's full name."))
        return name

    def clean_phone(self):
        return normalize_phone(self.cleaned_data.get("phone", ""))

    def clean_extra_phones_text(self):
        raw = self.cleaned_data.get("extra_phones_text", "")
        phones, bad = [], []
        for part in split_phones(raw):
            try:
                phones.append(normalize_phone(part))
            except ValidationError:
                bad.append(part.strip())
        if bad:
            raise ValidationError(_("Not a phone number: %(bad)s"), params={"bad": ", ".join(bad)})
        return phones

    def service_data(self) -> dict:
        data = {name: self.cleaned_data[name] for name in self.Meta.fields if name in self.cleaned_data}
        if "responsible" in self.fields and self.fields["responsible"].disabled:
            data.pop("responsible", None)
        if "extra_phones_text" in self.cleaned_data:
            data["extra_phones"] = self.cleaned_data["extra_phones_text"]
        data["custom"] = self.custom_values()
        return data

    def show_conflict(self, current: Client) -> None:
        """Keep what the user typed, tell them, and let the next save go through."""
        who = current.modified_by or _("someone")
        self.add_error(None, _(
            "%(who)s saved this client while you were editing. Your changes are still here: "
            "check them against the card and save again."
        ) % {"who": who})
        data = cast("QueryDict | dict[str, Any]", self.data).copy()
        data["seen_modified"] = current.modified_at.isoformat()
        self.data = data

    def main_bound_fields(self):
        return [self[name] for name in ["name", "responsible", "phone", "extra_phones_text", "email"] if name in self.fields]

    def more_bound_fields(self):
        names = ["lifecycle", "priority", "company", "country", "city", "address", "channel", "source",
                 "external_id", "registration_date"]
        return [self[name] for name in names if name in self.fields]


class CustomFieldForm(forms.ModelForm):
    choices_text = forms.CharField(
        label=_("Values"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("For a selector: one value per line."),
    )

    class Meta:
        model = CustomField
        fields = ["label", "entity", "kind"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["choices_text"].initial = "\n".join(self.instance.choices)

    def clean(self):
        cleaned = super().clean()
        changed = [f for f in ("kind", "entity") if self.instance.pk and cleaned.get(f) != getattr(self.instance, f)]
        if changed and custom_field_in_use(self.instance):
            self.add_error(changed[0], _("Records already have values in this field, so its type cannot change."))
        values = [v.strip()[:TEXT_FIELD_MAX] for v in cleaned.get("choices_text", "").splitlines() if v.strip()]
        if cleaned.get("kind") == CustomField.Kind.SELECT and not values:
            self.add_error("choices_text", _("A selector needs at least one value."))
        cleaned["choices"] = list(dict.fromkeys(values))
        return cleaned


class BulkResponsibleForm(forms.Form):
    responsible = forms.ModelChoiceField(
        label=_("New responsible"), queryset=get_user_model().objects.filter(is_active=True)
    )


class SavedFilterForm(forms.Form):
    name = forms.CharField(label=_("Filter name"), max_length=60)
