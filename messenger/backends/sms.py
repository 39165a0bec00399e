import json
import logging
import sys
import urllib.error
import urllib.request

from django.conf import settings

from . import SendError, SendRefused

log = logging.getLogger(__name__)

# 4xx answers that say "not now" rather than "never": retried like a 5xx.
RETRYABLE_4XX = {408, 425, 429}


class ConsoleBackend:
    """Prints the SMS (the embedded default: nothing leaves the machine)."""

    def send(self, *, to: str, text: str, key: str) -> str:
        sys.stdout.write(f"SMS to {to} [{key}]: {text}\n")
        return key


class HttpGatewayBackend:
    """POST {to, text} as JSON to SMS_GATEWAY_URL with a bearer token. The delivery's key goes in
    an Idempotency-Key header, so a gateway that honours it never sends one message twice.
    A 4xx answer (the number is invalid, the text refused) is SendRefused; a 5xx, 408, 429, a
    timeout or a connection failure is SendError (tried again later)."""

    def send(self, *, to: str, text: str, key: str) -> str:
        body = json.dumps({"to": to, "text": text}).encode()
        request = urllib.request.Request(
            settings.SMS_GATEWAY_URL, data=body, method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.SMS_GATEWAY_TOKEN}",
                     "Idempotency-Key": key},
        )
        try:
            with urllib.request.urlopen(request, timeout=settings.SMS_GATEWAY_TIMEOUT) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            reply = f"{error.code} {_excerpt(error)}".strip()
            if 400 <= error.code < 500 and error.code not in RETRYABLE_4XX:
                raise SendRefused(reply) from error
            raise SendError(reply) from error
        except (OSError, ValueError) as error:  # URLError, timeouts, resets; ValueError: no usable URL
            raise SendError(str(error) or type(error).__name__) from error
        try:  # the gateway took it (2xx): a body we cannot read does not make it unsent
            payload = json.loads(raw or b"{}")
        except ValueError:
            payload = {}
        return str(payload.get("id", key)) if isinstance(payload, dict) else key


def _excerpt(error: urllib.error.HTTPError) -> str:
    """What the gateway said about the refusal: its JSON "error"/"message", else the body's start."""
    try:
        raw = error.read()[:2000]
    except OSError:
        return error.reason or ""
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace").strip()[:200] or str(error.reason or "")
    if isinstance(payload, dict):
        return str(payload.get("error") or payload.get("message") or error.reason or "")[:200]
    return str(error.reason or "")
