"""A stand-in for the Telegram Bot API on 127.0.0.1, reached through python-telegram-bot's own base_url.

It records every request (method, token, fields, uploaded files) and answers
like the real API, or with a scripted failure: 429 with retry_after, 400 (bad
HTML, chat not found), 401 (bad token), 5xx. It can also queue updates for
getUpdates, so Telegram commands can be tested end to end.
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
        self.server.shutdown()
        self.server.server_close()

    def fail(self, method: str, status: int, description: str, **parameters):
        self.failures.setdefault(method, []).append((status, description, parameters))

    def sent(self, method=None) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if method is None or c.method == method]

    def messages(self) -> list[Call]:
        return [c for c in self.sent() if c.method in ("sendMessage", "sendPhoto")]

    def push_command(self, chat_id: int, text: str):
        with self.lock:
            update_id = len(self.updates) + 1
            self.updates.append({"update_id": update_id, "message": {
                "message_id": 1000 + update_id, "date": int(time.time()), "text": text,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "User"},
                "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]}})

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
        if token != self.token:
            return self._reply(handler, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
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
        if method == "getUpdates":
            offset = int(fields.get("offset") or 0)
            with self.lock:
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
                    fields[name] = part.get_content().strip() if part.get_content_type().startswith("text") \
                        else part.get_payload(decode=True).decode()
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
