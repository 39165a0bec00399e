"""Channel backends, chosen in settings like Django's EMAIL_BACKEND (DESIGN §7).

    SMS_BACKEND = "messenger.backends.sms.HttpGatewayBackend"   # production
    SMS_BACKEND = "messenger.backends.sms.ConsoleBackend"        # the embedded default

Email goes through Django's mailers (settings.MAILERS: SMTP in production, console in dev).
"""

from django.conf import settings
from django.utils.module_loading import import_string


class SendError(Exception):
    """The channel refused or failed to take the message; it can be retried."""


def sms_backend():
    return import_string(settings.SMS_BACKEND)()
