"""Channel secrets (bot tokens, passwords, signing secrets), kept encrypted in the database with
Fernet (the `cryptography` package). The key is CHANNEL_SECRET_KEY, or one derived from SECRET_KEY:
a copy of the database alone does not give the secrets away."""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    key = getattr(settings, "CHANNEL_SECRET_KEY", "") or settings.SECRET_KEY
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"voronka-channel-secrets:{key}".encode()).digest()))


def read(channel) -> dict:
    """The channel's secrets ({} when none, or when the key changed and they cannot be read)."""
    if not channel.secrets:
        return {}
    try:
        return json.loads(_fernet().decrypt(channel.secrets.encode()))
    except (InvalidToken, ValueError):
        return {}


def write(channel, values: dict) -> None:
    """Set the channel's secrets (not saved: the caller saves the channel). Empty values are kept
    as they were, so a form that does not show a secret does not erase it."""
    merged = {**read(channel), **{k: v for k, v in values.items() if v}}
    channel.secrets = _fernet().encrypt(json.dumps(merged).encode()).decode() if merged else ""
