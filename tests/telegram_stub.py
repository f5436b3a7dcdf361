"""A stand-in for the Telegram Bot API on 127.0.0.1, reached through python-telegram-bot's own base_url.

It records every request (method, token, fields, uploaded files) and answers
like the real API, or with a scripted failure: 429 with retry_after, 400 (bad
HTML, chat not found), 401 (bad token), 409 (a webhook is set), 5xx. It can also
queue updates for getUpdates (commands, plain messages from private chats and
groups, button presses), so Telegram commands, buttons and `telegram-setup`
can be tested end to end. With `long_poll = True`, getUpdates waits up to its
`timeout` for an update, as the real API does.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

BOT = {"id": 4242, "is_bot": True, "first_name": "Closebell", "username": "closebell_test_bot",
       "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}


@dataclass
class Call:
    method: str
    token: str
    fields: dict
    files: dict = field(default_factory=dict)  # field name -> bytes
    at: float = 0.0


class TelegramStub:
    def __init__(self, token="123456:TEST"):
        self.token = token
        self.calls: list[Call] = []
        self.failures: dict[str, list] = {}  # method -> [(status, description, parameters)] answered in turn
        self.updates: list[dict] = []
        self.lock = threading.Lock()
        self.message_id = 0
        self.known_chats: set[str] | None = None  # None: every chat exists
        self.delays: dict[str, list[float]] = {}  # method -> seconds to hold the answer, used in turn
        self.released = threading.Event()  # set: every held answer goes now (and later ones are not held)
        self.long_poll = False  # True: getUpdates waits up to `timeout` seconds for an update
        self.webhook: str | None = None  # a webhook URL set on the bot: getUpdates answers 409 until deleteWebhook
        self.arrived = threading.Condition(self.lock)
        self.commands: list[dict] = []  # the menu, as setMyCommands left it (getMyCommands answers it)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                stub._handle(self)

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, status: int, description: str, **parameters):
        self.failures.setdefault(method, []).append((status, description, parameters))

    def delay(self, method: str, seconds: float):
        """Hold the answer to the next call of `method` (recorded on arrival) for `seconds`, or until release()."""
        self.delays.setdefault(method, []).append(seconds)

    def release(self):
        self.released.set()

    def sent(self, method=None) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if method is None or c.method == method]

    def messages(self) -> list[Call]:
        return [c for c in self.sent() if c.method in ("sendMessage", "sendPhoto")]

    def offsets(self) -> list[int | None]:
        """The offset of every getUpdates call, in order (None: asked without one, i.e. from the start)."""
        return [int(c.fields["offset"]) if c.fields.get("offset") not in (None, "") else None
                for c in self.sent("getUpdates")]

    def push_command(self, chat_id: int, text: str, chat_type: str = "private"):
        """A command message; in a group (`chat_type` "group"/"supergroup") it comes from user 7."""
        chat = {"id": chat_id, "type": chat_type}
        if chat_type != "private":
            chat["title"] = "a group"
        with self.lock:
            update_id = len(self.updates) + 1
            self.updates.append({"update_id": update_id, "message": {
                "message_id": 1000 + update_id, "date": int(time.time()), "text": text, "chat": chat,
                "from": {"id": chat_id if chat_type == "private" else 7, "is_bot": False, "first_name": "User"},
                "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}})
            self.arrived.notify_all()

    def push_update(self, kind: str, body: dict):
        """Any update, e.g. ("edited_message", {...}) or ("channel_post", {...}); the update_id is added."""
        with self.lock:
            update_id = len(self.updates) + 1
            self.updates.append({"update_id": update_id, kind: body})
            self.arrived.notify_all()

    def push_message(self, chat_id: int, text: str = "hello", chat_type: str = "private", title: str | None = None,
                     username: str | None = "someone", from_id: int | None = None):
        """A plain message, from a private chat (with `username`) or a group (with `title`)."""
        chat = {"id": chat_id, "type": chat_type}
        if title:
            chat["title"] = title
        if chat_type == "private":
            chat["first_name"] = "User"
            if username:
                chat["username"] = username
        with self.lock:
            update_id = len(self.updates) + 1
            self.updates.append({"update_id": update_id, "message": {
                "message_id": 1000 + update_id, "date": int(time.time()), "text": text, "chat": chat,
                "from": {"id": from_id or abs(chat_id), "is_bot": False, "first_name": "User"}}})
            self.arrived.notify_all()

    def push_callback(self, chat_id: int, data: str, message_id: int = 1, from_id: int | None = None):
        """A button press on message `message_id` in chat `chat_id`, carrying `data`."""
        with self.lock:
            update_id = len(self.updates) + 1
            self.updates.append({"update_id": update_id, "callback_query": {
                "id": f"cq{update_id}", "chat_instance": f"ci{chat_id}", "data": data,
                "from": {"id": from_id or chat_id, "is_bot": False, "first_name": "User"},
                "message": {"message_id": message_id, "date": int(time.time()), "text": "alert",
                            "chat": {"id": chat_id, "type": "private"}}}})
            self.arrived.notify_all()

    # -- the API ---------------------------------------------------------------------------

    def _handle(self, handler):
        path = handler.path.split("?")[0]
        parts = path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return self._reply(handler, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
        token, method = parts[0][3:], parts[1]
        fields, files = self._parse(handler)
        with self.lock:
            self.calls.append(Call(method, token, fields, files, time.time()))
            scripted = self.failures.get(method)
            failure = scripted.pop(0) if scripted else None
            delays = self.delays.get(method)
            delay = delays.pop(0) if delays else 0
        if delay:
            self.released.wait(delay)
        if token != self.token:
            return self._reply(handler, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        if method == "deleteWebhook":
            self.webhook = None
        if method == "getUpdates" and self.webhook and not failure:
            failure = (409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
                            "to delete the webhook first", {})
        if failure:
            status, description, parameters = failure
            body = {"ok": False, "error_code": status, "description": description}
            if parameters:
                body["parameters"] = parameters
            return self._reply(handler, status, body)
        chat = str(fields.get("chat_id", ""))
        if self.known_chats is not None and method.startswith("send") and chat not in self.known_chats:
            return self._reply(handler, 400, {"ok": False, "error_code": 400,
                                              "description": "Bad Request: chat not found"})
        return self._reply(handler, 200, {"ok": True, "result": self._result(method, fields)})

    def _result(self, method, fields):
        if method == "getMe":
            return BOT
        if method == "getMyCommands":
            return list(self.commands)
        if method == "setMyCommands":
            commands = fields.get("commands")
            self.commands = json.loads(commands) if isinstance(commands, str) else list(commands or [])
            return True
        if method == "getUpdates":
            offset = int(fields.get("offset") or 0)
            wait = float(fields.get("timeout") or 0) if self.long_poll else 0.0
            with self.lock:
                self.arrived.wait_for(lambda: any(u["update_id"] >= offset for u in self.updates), timeout=wait)
                return [u for u in self.updates if u["update_id"] >= offset]
        if method in ("sendMessage", "sendPhoto"):
            with self.lock:
                self.message_id += 1
                message_id = self.message_id
            message = {"message_id": message_id, "date": int(time.time()),
                       "chat": {"id": int(fields.get("chat_id", 0)), "type": "private"}}
            if method == "sendMessage":
                message["text"] = fields.get("text", "")
            else:
                message["photo"] = [{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}]
            return message
        return True

    @staticmethod
    def _parse(handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        ctype = handler.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                f"Content-Type: {ctype}\r\n\r\n".encode() + body)
            fields, files = {}, {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if part.get_filename():
                    files[name] = part.get_payload(decode=True)
                else:
                    fields[name] = part.get_payload(decode=True).decode("utf-8").strip()
            return fields, files
        if ctype.startswith("application/json"):
            return json.loads(body or b"{}"), {}
        return {k: v[0] for k, v in parse_qs(body.decode()).items()}, {}

    @staticmethod
    def _reply(handler, status, body):
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
