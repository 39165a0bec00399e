"""Countries offered in client forms and filters (ISO 3166-1 alpha-2, names translated)."""

from django.utils.translation import gettext_lazy as _

COUNTRIES = [
    ("RU", _("Russia")),
    ("BY", _("Belarus")),
    ("KZ", _("Kazakhstan")),
    ("UZ", _("Uzbekistan")),
    ("KG", _("Kyrgyzstan")),
    ("TJ", _("Tajikistan")),
    ("AM", _("Armenia")),
    ("AZ", _("Azerbaijan")),
    ("GE", _("Georgia")),
    ("MD", _("Moldova")),
    ("UA", _("Ukraine")),
    ("TR", _("Turkey")),
    ("AE", _("United Arab Emirates")),
    ("CY", _("Cyprus")),
    ("RS", _("Serbia")),
    ("DE", _("Germany")),
    ("PL", _("Poland")),
    ("GB", _("United Kingdom")),
    ("US", _("United States")),
    ("IN", _("India")),
    ("BR", _("Brazil")),
    ("TH", _("Thailand")),
    ("VN", _("Vietnam")),
    ("ID", _("Indonesia")),
]
