"""HTTP requests to URLs that users configure (a channel's Bot API base, a bridge's webhook, an SMS
gateway; later partners' postbacks): DESIGN §13.

- The host is resolved once and every address it resolves to must be public: loopback, private,
  link-local, multicast, reserved and unspecified addresses are refused (so is a literal IP of
  those kinds), unless the address is in OUTBOUND_ALLOWED_NETWORKS (tests list 127.0.0.1/32 for
  their own servers).
- The connection goes to that address (pinned: a DNS answer that changes between the check and the
  connection cannot point it elsewhere); HTTPS still verifies the certificate for the host name.
- Redirects are not followed: a 3xx is an answer like any other.
"""

import http.client
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class Blocked(Exception):
    """The URL may not be requested (a private address, a scheme other than http(s), no host)."""


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict

    def json(self):
        return json.loads(self.body or b"null")


def _allowed_networks():
    return [ipaddress.ip_network(n, strict=False) for n in getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", [])]


def resolve(host: str, port: int) -> str:
    """The one public address to connect to, or Blocked."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise Blocked(f"cannot resolve {host}: {error}") from error
    allowed = _allowed_networks()
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if any(address in network for network in allowed):
            addresses.append(address)
            continue
        if not address.is_global or address.is_multicast:
            raise Blocked(f"{host} resolves to a private or reserved address ({address})")
        addresses.append(address)
    if not addresses:
        raise Blocked(f"cannot resolve {host}")
    return str(addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def request(method: str, url: str, *, body: bytes | None = None, headers: dict | None = None, timeout: float = 10.0) -> Response:
    """Send one request to a user-configured URL; OSError (including timeouts) and Blocked are the caller's to handle."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Blocked(f"not an http(s) URL: {url[:100]}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve(parts.hostname, port)
    connection_class = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
    connection = connection_class(parts.hostname, port, address, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        limit = getattr(settings, "MESSENGER_MAX_ATTACHMENT_BYTES", 20 * 1024 * 1024) + 1024 * 1024
        return Response(status=answer.status, body=answer.read(limit), headers={k.lower(): v for k, v in answer.getheaders()})
    finally:
        connection.close()


def post_json(url: str, payload, *, headers: dict | None = None, timeout: float = 10.0) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return request("POST", url, body=body, headers={"Content-Type": "application/json", **(headers or {})}, timeout=timeout)
