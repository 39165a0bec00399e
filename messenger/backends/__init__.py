"""Channel backends, chosen in settings like Django's EMAIL_BACKEND (DESIGN §7).

    SMS_BACKEND = "messenger.backends.sms.HttpGatewayBackend"   # production
    SMS_BACKEND = "messenger.backends.sms.ConsoleBackend"        # the embedded default

Email goes through Django's mailers (settings.MAILERS: SMTP in production, console in dev).

A backend's send() returns the channel's id for the message, or raises SendError when the channel
failed to take it for a reason that may pass (a timeout, the provider down, "try again later"),
or SendRefused when the channel refused this message for good (an invalid number): the mass send
retries the first after a backoff and fails the second at once.
"""

from django.conf import settings
from django.utils.module_loading import import_string


class SendError(Exception):
    """The channel failed to take the message; it can be retried."""


class SendRefused(SendError):
    """The channel refused the message for good (an invalid address or number): retrying cannot help."""


def sms_backend():
    return import_string(settings.SMS_BACKEND)()
