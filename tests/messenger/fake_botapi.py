"""A small Bot-API-compatible HTTP server of our own on 127.0.0.1 (DESIGN §7: tests run a real
server for each channel), and a Telegram that delivers updates to a webhook.

    api = FakeBotApi(token="123:abc").start()
    api.url                                   # the channel's api_base
    api.requests                              # every request: method name, JSON or form fields, files
    api.calls("sendMessage")                  # those of one method
    file_id = api.add_file(png_bytes, "photos/file_1.png")   # for getFile and /file/bot<token>/<path>
    api.fail_next(1, 500)                     # the next call answers 500 (also 429 with retry_after, 403…)
    api.webhook                               # what setWebhook set: url, secret_token, allowed_updates…
    api.deliver(update)                       # POST it to the webhook like Telegram: the secret header, retried on non-2xx
    api.deliver_concurrently(update, copies=2)  # the same update from two threads at once

Sent messages get increasing message ids (1, 2, …). A wrong token is answered 401, an unknown
method 404, as the real Bot API does.
"""

import json
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

TOKEN = "123456789:AAtest-token_of-the-fake-bot"


class FakeBotApi:
    def __init__(self, token: str = TOKEN):
        self.token = token
        self.requests: list[dict] = []
        self.files: dict[str, dict] = {}  # file_id -> {"path", "content", "size"}
        self.webhook: dict | None = None
        self.deliveries: list[dict] = []  # every webhook delivery attempt: update_id, status, body
        self._failures: list[dict] = []
        self._next_message_id = 1
        self._next_file = 1
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()  # a stalled answer is given up when the server stops

    # The server ------------------------------------------------------------------------------

    def start(self) -> "FakeBotApi":
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                api._handle(self, "GET")

            def do_POST(self):
                api._handle(self, "POST")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # What a test sets up and reads ----------------------------------------------------------

    def add_file(self, content: bytes, path: str = "", *, file_id: str = "") -> str:
        """A file getFile knows and /file/bot<token>/<path> serves; its file_id."""
        with self._lock:
            number = self._next_file
            self._next_file += 1
        file_id = file_id or f"FILE{number:04d}"
        self.files[file_id] = {"path": path or f"documents/file_{number}", "content": content, "size": len(content)}
        return file_id

    def fail_next(self, count: int = 1, status: int = 500, description: str = "", *, retry_after: int | None = None,
                  method: str = "", skip: int = 0) -> None:
        """The next `count` calls (of `method`, or any), after `skip` that go through, answer
        `status` as the Bot API would (its description; retry_after for a 429)."""
        with self._lock:
            for index in range(count):
                self._failures.append({"status": status, "description": description, "retry_after": retry_after, "method": method,
                                       "skip": skip if index == 0 else 0, "stall": 0.0})

    def stall_next(self, seconds: float, *, method: str = "") -> None:
        """The next call (of `method`, or any) is carried out, but answered only after `seconds`:
        a client that gave up waiting does not know it went through."""
        with self._lock:
            self._failures.append({"status": 200, "description": "", "retry_after": None, "method": method, "skip": 0, "stall": seconds})

    def calls(self, method: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method]

    def sent(self) -> list[dict]:
        """The messages the bot actually sent (answered ok): sendMessage and sendDocument."""
        return [r for r in self.requests if r["method"] in ("sendMessage", "sendDocument") and r["status"] == 200]

    # Webhook deliveries, like Telegram's ------------------------------------------------------

    def deliver(self, update: dict, *, url: str = "", secret: str | None = None, attempts: int = 3,
                raw: bytes | None = None) -> list[int]:
        """POST the update to the webhook (setWebhook's URL and secret unless given; secret="" sends
        no header) until it answers 2xx, at most `attempts` times; the statuses it answered."""
        target = url or (self.webhook or {}).get("url")
        assert target, "no webhook: call setWebhook first or pass url="
        secret = (self.webhook or {}).get("secret_token", "") if secret is None else secret
        body = raw if raw is not None else json.dumps(update, ensure_ascii=False).encode()
        statuses = []
        for _attempt in range(attempts):
            request = urllib.request.Request(target, data=body, method="POST", headers={"Content-Type": "application/json"})
            if secret:
                request.add_header("X-Telegram-Bot-Api-Secret-Token", secret)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, answer = response.status, response.read()
            except urllib.error.HTTPError as error:
                status, answer = error.code, error.read()
            statuses.append(status)
            with self._lock:
                self.deliveries.append({"update_id": update.get("update_id") if isinstance(update, dict) else None,
                                        "status": status, "body": answer})
            if 200 <= status < 300:
                break
        return statuses

    def deliver_concurrently(self, update: dict, *, copies: int = 2, **options) -> list[list[int]]:
        """The same update from `copies` threads released at the same instant (each retrying as deliver() does)."""
        barrier = threading.Barrier(copies)
        results: list[list[int]] = [[] for _ in range(copies)]
        errors: list[BaseException] = []

        def one(index):
            try:
                barrier.wait(timeout=10)
                results[index] = self.deliver(update, **options)
            except BaseException as error:  # shown by the caller
                errors.append(error)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        return results

    # Answers ----------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, verb: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        content_type = handler.headers.get("Content-Type", "")
        file_match = re.fullmatch(r"/file/bot([^/]+)/(.+)", parts.path)
        if file_match:
            download: dict = {"method": "file", "http": verb, "token": file_match.group(1), "path": file_match.group(2), "json": None,
                              "fields": {}, "files": {}}
            found = next((f for f in self.files.values() if f["path"] == file_match.group(2)), None)
            if file_match.group(1) != self.token or found is None:
                self._record(download, 404)
                return self._reply(handler, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            self._record(download, 200)
            return self._bytes(handler, 200, found["content"])
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", parts.path)
        record: dict = {"method": match.group(2) if match else parts.path, "http": verb, "token": match.group(1) if match else "",
                        "path": parts.path, "json": None, "fields": dict(parse_qsl(parts.query)), "files": {}, "content_type": content_type}
        if content_type.startswith("application/json"):
            try:
                record["json"] = json.loads(body or b"{}")
                record["fields"].update({k: v for k, v in record["json"].items()})
            except ValueError:
                self._record(record, 400)
                return self._error(handler, 400, "Bad Request: can't parse JSON object")
        elif content_type.startswith("multipart/form-data"):
            fields, files = parse_multipart(body, content_type)
            record["fields"].update(fields)
            record["files"] = files
        elif content_type.startswith("application/x-www-form-urlencoded"):
            record["fields"].update(dict(parse_qsl(body.decode())))
        if match is None:
            self._record(record, 404)
            return self._error(handler, 404, "Not Found")
        if record["token"] != self.token:
            self._record(record, 401)
            return self._error(handler, 401, "Unauthorized")
        with self._lock:
            failure = next((f for f in self._failures if not f["method"] or f["method"] == record["method"]), None)
            if failure is not None and failure["skip"]:
                failure["skip"] -= 1
                failure = None
            elif failure is not None:
                self._failures.remove(failure)
        stall = 0.0
        if failure is not None and failure["stall"]:
            stall, failure = failure["stall"], None
        if failure is not None:
            self._record(record, failure["status"])
            extra = {"parameters": {"retry_after": failure["retry_after"]}} if failure["retry_after"] is not None else {}
            return self._error(handler, failure["status"], failure["description"] or _DEFAULT_ERRORS.get(failure["status"], "Error"),
                               **extra)
        method = getattr(self, f"_method_{record['method']}", None)
        if method is None:
            self._record(record, 404)
            return self._error(handler, 404, "Not Found: method not found")
        status, result = method(record)
        self._record(record, status)
        if stall:
            self._stopping.wait(stall)  # the answer comes `stall` seconds late (or when the server stops)
        if status != 200:
            return self._error(handler, status, result)
        return self._reply(handler, 200, {"ok": True, "result": result})

    def _method_sendMessage(self, record):
        fields = record["fields"]
        if not fields.get("chat_id"):
            return 400, "Bad Request: chat_id is empty"
        if not str(fields.get("text") or "").strip():
            return 400, "Bad Request: message text is empty"
        return 200, {**self._new_message(fields["chat_id"]), "text": fields["text"]}

    def _method_sendDocument(self, record):
        fields = record["fields"]
        if not fields.get("chat_id"):
            return 400, "Bad Request: chat_id is empty"
        document = record["files"].get("document")
        if document is None:
            return 400, "Bad Request: there is no document in the request"
        result = {**self._new_message(fields["chat_id"]), "document": {"file_name": document["filename"], "file_size": len(document["content"])}}
        if fields.get("caption"):
            result["caption"] = fields["caption"]
        return 200, result

    def _method_getFile(self, record):
        found = self.files.get(str(record["fields"].get("file_id") or ""))
        if found is None:
            return 400, "Bad Request: invalid file_id"
        return 200, {"file_id": record["fields"]["file_id"], "file_unique_id": "u" + record["fields"]["file_id"],
                     "file_size": found["size"], "file_path": found["path"]}

    def _method_setWebhook(self, record):
        fields = record["fields"]
        if not fields.get("url"):
            return 400, "Bad Request: bad webhook: URL must be provided"
        if fields.get("secret_token") and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(fields["secret_token"])):
            return 400, "Bad Request: secret token contains unallowed characters"
        self.webhook = {k: fields.get(k) for k in ("url", "secret_token", "allowed_updates", "drop_pending_updates")}
        return 200, True

    def _method_deleteWebhook(self, record):
        self.webhook = None
        return 200, True

    def _method_getMe(self, record):
        return 200, {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "Voronka test bot", "username": "voronka_test_bot"}

    def _new_message(self, chat_id) -> dict:
        with self._lock:
            number = self._next_message_id
            self._next_message_id += 1
        return {"message_id": number, "date": int(time.time()), "chat": {"id": _int_or(chat_id), "type": "private"}}

    def _record(self, record: dict, status: int) -> None:
        record["status"] = status
        with self._lock:
            self.requests.append(record)

    def _error(self, handler, status: int, description: str, **extra) -> None:
        self._reply(handler, status, {"ok": False, "error_code": status, "description": description, **extra})

    def _reply(self, handler, status: int, payload: dict) -> None:
        self._bytes(handler, status, json.dumps(payload).encode(), "application/json")

    @staticmethod
    def _bytes(handler, status: int, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (stall_next)
            handler.close_connection = True


_DEFAULT_ERRORS = {
    400: "Bad Request: chat not found",
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry later",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


def _int_or(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def parse_multipart(body: bytes, content_type: str) -> tuple[dict, dict]:
    """multipart/form-data as the Bot API reads it: text fields, and files as {filename, content_type, content}."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    assert boundary, content_type
    delimiter = b"--" + boundary.group(1).encode()
    fields, files = {}, {}
    assert body.rstrip(b"\r\n").endswith(delimiter + b"--"), "the body does not end with the closing boundary"
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        assert chunk.startswith(b"\r\n") and chunk.endswith(b"\r\n"), chunk[:80]
        head, _, content = chunk[2:-2].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("utf-8").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        assert name, disposition
        if filename:
            files[name.group(1)] = {"filename": filename.group(1), "content_type": headers.get("content-type", ""), "content": content}
        else:
            fields[name.group(1)] = content.decode("utf-8")
    return fields, files


def message_update(update_id: int, *, chat_id: int = 5550001, message_id: int = 1, text: str | None = "Hello",
                   first_name: str = "Ivan", last_name: str = "Petrov", username: str = "ivan_p", **fields) -> dict:
    """An update with a new private message, as Telegram sends it; `fields` go into the message (photo, document, contact…)."""
    sender = {"id": chat_id, "is_bot": False, "first_name": first_name, "username": username, "language_code": "ru"}
    if last_name:
        sender["last_name"] = last_name
    message = {"message_id": message_id, "from": sender, "date": 1_767_225_600,
               "chat": {"id": chat_id, "first_name": first_name, "type": "private"}, **fields}
    if text is not None:
        message["text"] = text
    return {"update_id": update_id, "message": message}


@pytest.fixture(name="botapi")  # named, so a test module may import it under another name (botapi_fixture = fake_botapi.botapi)
def botapi():
    """A FakeBotApi listening on 127.0.0.1 for the test, shut down after it."""
    api = FakeBotApi().start()
    yield api
    api.stop()
