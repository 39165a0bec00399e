"""Phone numbers: normalised to E.164 with phonenumbers, searchable by their digits.

An office number's extension ("+7 495 123-45-67 доб. 12", "ext. 12", "#12") is kept, written after
the number as RFC 3966 writes it: "+74951234567;ext=12" (also what a tel: link takes). Two contacts
on one switchboard are two numbers; the number without its extension is what an SMS goes to and
what the search column holds.
"""

import re
from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

NON_DIGITS = re.compile(r"\D+")


PLAIN = re.compile(r"^\+?[\d\s().\-]+$")


def _russian(raw: str) -> str | None:
    """The everyday Russian forms (8 916 …, +7 916 …, 7916…, 916…) without the library: an import
    of 100,000 rows spends seconds in phonenumbers.parse otherwise. Anything else returns None
    and goes to phonenumbers; tests check both agree on these forms."""
    if not PLAIN.match(raw):
        return None
    digits = NON_DIGITS.sub("", raw)
    if raw.startswith("+"):
        national = digits[1:] if len(digits) == 11 and digits[0] == "7" else ""
    elif len(digits) == 11 and digits[0] in "78":
        national = digits[1:]
    else:
        national = digits if len(digits) == 10 else ""
    return "+7" + national if national[:1] == "9" else None


EXTENSION = ";ext="
EXTENSION_MAX = 10  # digits: the phone column holds E.164's 16 characters, ";ext=" and these


def split_extension(phone: str) -> tuple[str, str]:
    """(the number in E.164, its extension or "")."""
    number, _sep, extension = (phone or "").partition(EXTENSION)
    return number, extension


def without_extension(phone: str) -> str:
    return split_extension(phone)[0]


# Several numbers in one cell or field ("8 (495) 123-45-67, +7 916 …", as 1C exports them), and a
# part of it that is the extension of the number before it ("8 495 222-33-44, доб. 123").
PHONE_SEPARATORS = re.compile(r"[,;/\n]+")
EXTENSION_PART = re.compile(r"^\s*(?:доб|вн|ext|x(?=\s*\d)|#)", re.IGNORECASE)


def split_phones(text: str) -> list[str]:
    """The numbers written in one text, each with its extension."""
    parts: list[str] = []
    for part in PHONE_SEPARATORS.split(text or ""):
        part = part.strip()
        if not part:
            continue
        if parts and EXTENSION_PART.match(part):
            parts[-1] += " " + part
        else:
            parts.append(part)
    return parts


# Ways of writing an extension phonenumbers does not know ("вн. 12", "внутр. 12", "добавочный 12"):
# read as "доб.", which it does.
EXTENSION_WORDS = re.compile(r"\s*(?:внутр|вн|добавочный)\.?\s*(?=\d)", re.IGNORECASE)


def normalize_phone(raw: str, region: str | None = None) -> str:
    """Return the number in E.164 (+79161234567), with its extension if it has one
    (+74951234567;ext=12), or raise ValidationError."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    raw = EXTENSION_WORDS.sub(" доб. ", raw)
    if (region or settings.PHONE_DEFAULT_REGION) == "RU" and (fast := _russian(raw)):
        return fast
    try:
        number = phonenumbers.parse(raw, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValidationError(_("Enter a valid phone number, e.g. +7 916 123-45-67."), code="invalid") from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationError(_("Enter a valid phone number, e.g. +7 916 123-45-67."), code="invalid")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if number.extension:
        if not number.extension.isdigit() or len(number.extension) > EXTENSION_MAX:
            raise ValidationError(_("An extension is at most %(n)s digits.") % {"n": EXTENSION_MAX}, code="extension")
        return e164 + EXTENSION + number.extension
    return e164


RUSSIAN_MOBILE = re.compile(r"\+79\d{9}")


def format_phone(e164: str) -> str:
    """Human form of an E.164 number: +7 916 123-45-67. Russian mobiles are cut by hand (an
    export of 100,000 clients spends seconds in phonenumbers otherwise); tests check both agree."""
    if not e164:
        return ""
    if EXTENSION in e164:
        main, extension = split_extension(e164)
        return format_phone(main) + " " + _("ext. %(n)s") % {"n": extension}
    if RUSSIAN_MOBILE.fullmatch(e164):
        return f"+7 {e164[2:5]} {e164[5:8]}-{e164[8:10]}-{e164[10:12]}"
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def digits_of(text: str) -> str:
    return NON_DIGITS.sub("", text or "")


def phone_digits(phones: list[str]) -> str:
    """The search column: every phone's digits (without an extension), space separated."""
    return " ".join(digits_of(without_extension(p)) for p in phones if p)


@dataclass(frozen=True)
class PhoneSearch:
    """What a typed phone, or a fragment of one, looks for in the digits column."""

    anywhere: tuple[str, ...] = ()  # digits found anywhere in a phone
    at_start: tuple[str, ...] = ()  # digits a phone begins with


def phone_search(text: str, region: str | None = None) -> PhoneSearch:
    """The digits to look for, read the way stored phones were normalised (E.164).

    The digits as typed always stay a substring search ("123-45" finds a number by its middle).
    A complete number in the region's own form ("8 (999) 123-45-67") is also looked for as its
    E.164 digits; a fragment starting with the region's national prefix ("8 999 12") also as
    the beginning of a phone with the country code in its place ("799912…").
    """
    text = (text or "").strip()
    digits = digits_of(text)
    if not digits:
        return PhoneSearch()
    region = region or settings.PHONE_DEFAULT_REGION
    anywhere, at_start = [digits], []
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_valid_number(number):
        anywhere.append(digits_of(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)))
    elif not text.startswith("+"):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = metadata.national_prefix if metadata else None
        if metadata and prefix and digits.startswith(prefix) and len(digits) > len(prefix):
            at_start.append(f"{metadata.country_code}{digits[len(prefix):]}")
    # A pattern containing another one only finds what the shorter one finds already.
    anywhere = list(dict.fromkeys(anywhere))
    return PhoneSearch(
        anywhere=tuple(p for p in anywhere if not any(o != p and o in p for o in anywhere)),
        at_start=tuple(p for p in at_start if not any(o in p for o in anywhere)),
    )
