from django.db import models
from django.utils.translation import gettext_lazy as _


class Color(models.TextChoices):
    """The palette for tags and stages (CSS classes tag-<value> and stage-<value>)."""

    GREY = "grey", _("Grey")
    BLUE = "blue", _("Blue")
    GREEN = "green", _("Green")
    YELLOW = "yellow", _("Yellow")
    ORANGE = "orange", _("Orange")
    RED = "red", _("Red")
    PURPLE = "purple", _("Purple")
