"""Phone numbers: normalised to E.164 with phonenumbers, searchable by their digits."""

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

NON_DIGITS = re.compile(r"\D+")


def normalize_phone(raw: str, region: str | None = None) -> str:
    """Return the number in E.164 (+79161234567) or raise ValidationError."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValidationError(_("Enter a valid phone number, e.g. +7 916 123-45-67."), code="invalid")
    if not phonenumbers.is_possible_number(number):
        raise ValidationError(_("Enter a valid phone number, e.g. +7 916 123-45-67."), code="invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """Human form of an E.164 number: +7 916 123-45-67."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def digits_of(text: str) -> str:
    return NON_DIGITS.sub("", text or "")


def phone_digits(phones: list[str]) -> str:
    """The search column: every phone's digits, space separated."""
    return " ".join(digits_of(p) for p in phones if p)
