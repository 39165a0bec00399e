from django import template

from crm.activity import notification_text as _notification_text

register = template.Library()


@register.filter
def notification_text(notification) -> str:
    """The notification's sentence in the reader's language and time zone (the request's)."""
    return _notification_text(notification)
