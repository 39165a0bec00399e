"""The embedded default's channel: replies are printed by the worker, and an admin's "simulate an
inbound message" form (messenger.views) feeds it, so the demo inbox is alive without any server."""

import json
import sys
import uuid

from . import Backend, Incoming


class ConsoleBackend(Backend):
    idempotent = True  # nothing leaves the machine

    def parse(self, payload: str) -> list:
        data = json.loads(payload)
        return [Incoming(external_id=str(data.get("id") or uuid.uuid4()), chat_id=str(data["from"]), text=str(data.get("text", "")),
                         name=str(data.get("name", "")), phone=str(data.get("phone", "")), email=str(data.get("email", "")))]

    def send(self, message, *, to: str) -> str:
        sys.stdout.write(f"[{self.channel.name}] to {to}: {message.text}\n")
        return str(message.key)
