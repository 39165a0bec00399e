import json
import logging
import sys
import urllib.error
import urllib.request

from django.conf import settings

from . import SendError

log = logging.getLogger(__name__)


class ConsoleBackend:
    """Prints the SMS (the embedded default: nothing leaves the machine)."""

    def send(self, *, to: str, text: str, key: str) -> str:
        sys.stdout.write(f"SMS to {to} [{key}]: {text}\n")
        return key


class HttpGatewayBackend:
    """POST {to, text} as JSON to SMS_GATEWAY_URL with a bearer token. The delivery's key goes in
    an Idempotency-Key header, so a gateway that honours it never sends one message twice."""

    def send(self, *, to: str, text: str, key: str) -> str:
        body = json.dumps({"to": to, "text": text}).encode()
        request = urllib.request.Request(
            settings.SMS_GATEWAY_URL, data=body, method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.SMS_GATEWAY_TOKEN}",
                     "Idempotency-Key": key},
        )
        try:
            with urllib.request.urlopen(request, timeout=settings.SMS_GATEWAY_TIMEOUT) as response:
                payload = json.loads(response.read() or b"{}")
        except (urllib.error.URLError, TimeoutError, ValueError) as error:
            raise SendError(str(error)) from error
        return str(payload.get("id", key))
