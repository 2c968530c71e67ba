"""A local stand-in for the Telegram Bot API, over real HTTP on loopback, scriptable and strict.

It checks what the real API checks on sendMessage (text length, the HTML subset of parse_mode
HTML, the inline keyboard) and counts breaches of the Bot API's rate limits (1 message/s per
chat, 30/s per bot) instead of enforcing them, so a test can assert there were none.
"""

from __future__ import annotations

import collections
import html
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlsplit

from tests.support.stand_in import StandIn

MAX_BODY = 1024 * 1024
MAX_TEXT_LENGTH = 4096
# The Bot API's limits: one message per chat per second, about 30 per second per bot.
CHAT_INTERVAL = 1.0
# Loopback scheduling jitter between the sender's limiter and this server.
CHAT_TOLERANCE = 0.05
BOT_PER_SECOND = 30
WINDOW = 1.0

# Telegram's HTML subset (core.telegram.org/bots/api#html-style).
ALLOWED_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
        "span", "tg-spoiler", "blockquote",
    }
)  # fmt: skip
NAMED_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})
BUTTON_URL_SCHEMES = ("http://", "https://", "tg://")
PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)/?$")
SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
METHODS = frozenset({"sendMessage", "setWebhook", "getMe", "deleteWebhook", "getWebhookInfo"})


class EntityError(ValueError):
    """Text that parse_mode HTML refuses, with the reason Telegram would give."""


class _TelegramHtml(HTMLParser):
    """Walks a message's HTML and raises EntityError where Telegram would refuse it."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = text
        self.stack: list[str] = []
        self.visible: list[str] = []
        # Offsets of line starts, to turn getpos() into a byte offset as Telegram reports.
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def _offset(self) -> int:
        """The character offset of the construct being handled."""
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def fail(self, reason: str) -> NoReturn:
        """Refuse the text, saying where, in UTF-8 bytes as the Bot API does."""
        byte_offset = len(self.source[: self._offset()].encode())
        raise EntityError(f"{reason} at byte offset {byte_offset}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.fail(f'Unsupported start tag "{tag}"')
        names = dict(attrs)
        if tag == "a":
            if set(names) != {"href"} or not names["href"]:
                self.fail('Tag "a" must have exactly one non-empty attribute "href"')
        elif tag == "span":
            if names != {"class": "tg-spoiler"}:
                self.fail('Tag "span" must have class "tg-spoiler"')
        elif tag == "code":
            language = names.pop("class", None)
            if names or (language is not None and not language.startswith("language-")):
                self.fail('Tag "code" may only have class "language-…"')
        elif tag == "blockquote":
            if set(names) - {"expandable"}:
                self.fail('Tag "blockquote" may only have attribute "expandable"')
        elif names:
            self.fail(f'Tag "{tag}" must have no attributes')
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.fail(f'Unsupported self-closing tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.fail(f'Unmatched end tag "{tag}"')
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        # A raw <, > or & is text nobody escaped: user input, or a tag Telegram will misread.
        for char in "<>&":
            if char in data:
                self.fail(f'Unescaped "{char}"; use "{html.escape(char)}"')
        self.visible.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in NAMED_ENTITIES:
            self.fail(f'Unsupported HTML entity "&{name};"')
        self._require_semicolon(len(name))
        self.visible.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        try:
            code = int(name[1:], 16) if name[:1] in "xX" else int(name)
            char = chr(code)
        except (ValueError, OverflowError):
            self.fail(f'Invalid character reference "&#{name};"')
        self._require_semicolon(len(name) + 1)
        self.visible.append(char)

    def _require_semicolon(self, name_length: int) -> None:
        """Refuse an entity without its closing semicolon ("&amp" then a space)."""
        end = self._offset() + 1 + name_length
        if self.source[end : end + 1] != ";":
            self.fail("Entity without a closing semicolon")

    def handle_comment(self, data: str) -> None:
        self.fail("Comments are not supported")

    def handle_decl(self, decl: str) -> None:
        self.fail("Declarations are not supported")

    def handle_pi(self, data: str) -> None:
        self.fail("Processing instructions are not supported")

    def unknown_decl(self, data: str) -> None:
        self.fail("Declarations are not supported")

    def check(self) -> str:
        """Parse the whole text; the visible text, or EntityError."""
        self.feed(self.source)
        self.close()
        if self.stack:
            raise EntityError(f'Can\'t find end tag corresponding to start tag "{self.stack[-1]}"')
        return "".join(self.visible)


def visible_text(text: str, parse_mode: str | None) -> str:
    """The text a user would see (tags dropped, entities decoded), or EntityError."""
    if parse_mode == "HTML":
        return _TelegramHtml(text).check()
    return text


def utf16_length(text: str) -> int:
    """The length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class SentMessage:
    """One message the stand-in accepted (Telegram would deliver it)."""

    chat_id: str
    text: str
    parse_mode: str | None
    reply_markup: dict[str, Any] | None
    message_id: int
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The inline keyboard's buttons, row by row, flattened."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]


@dataclass
class Request:
    """One API call and the status it got."""

    method: str
    chat_id: str | None
    status: int
    description: str | None
    at: float = field(default_factory=time.monotonic)


def _fail(status: int, description: str, **parameters: Any) -> tuple[int, dict[str, Any]]:
    """A Bot API error answer."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, body


def _ok(result: Any, **extra: Any) -> tuple[int, dict[str, Any]]:
    """A Bot API success answer."""
    return 200, {"ok": True, "result": result, **extra}


class FakeTelegram(StandIn):
    """Answers the Bot API for one bot; tests script failures and read what was sent."""

    def __init__(
        self, token: str = "123456:TEST-token", username: str = "test_bot", latency: float = 0.0
    ) -> None:
        self.token = token
        self.username = username
        self.latency = latency
        head = token.split(":", 1)[0]
        self.bot_id = int(head) if head.isdigit() else 1
        self.accepted: list[SentMessage] = []
        self.requests: list[Request] = []
        self.webhook: dict[str, Any] | None = None
        self._refused: dict[str, tuple[int, str, dict[str, Any]]] = {}
        self._retry_after: collections.deque[int] = collections.deque()
        self._server_errors: collections.deque[int] = collections.deque()
        self._replies: collections.deque[tuple[int, Any]] = collections.deque()
        self._message_ids: dict[str, itertools.count[int]] = {}
        self._cond = threading.Condition()
        super().__init__(_Handler)

    # --- scripting ---------------------------------------------------------------

    def script_retry_after(self, n: int, seconds: int) -> None:
        """Answer the next `n` sendMessage calls 429 with parameters.retry_after = seconds."""
        with self._cond:
            self._retry_after.extend([seconds] * n)

    def fail_5xx(self, n: int, status: int = 502) -> None:
        """Answer the next `n` calls (any method) with `status`: 500 as JSON, else as HTML."""
        with self._cond:
            self._server_errors.extend([status] * n)

    def script_reply(self, status: int, body: Any) -> None:
        """Answer the next sendMessage call with exactly this status and body (dict or text)."""
        with self._cond:
            self._replies.append((status, body))

    def refuse(self, chat_id: str | int, status: int, description: str, **parameters: Any) -> None:
        """Always answer sendMessage to `chat_id` with this error."""
        with self._cond:
            self._refused[str(chat_id)] = (status, description, parameters)

    def block(self, chat_id: str | int) -> None:
        """The user blocked the bot: 403 from now on."""
        self.refuse(chat_id, 403, "Forbidden: bot was blocked by the user")

    def lose(self, chat_id: str | int) -> None:
        """The chat no longer exists: 400 chat not found from now on."""
        self.refuse(chat_id, 400, "Bad Request: chat not found")

    # --- reading -----------------------------------------------------------------

    def messages(self, chat_id: str | int | None = None) -> list[SentMessage]:
        """The accepted messages (to one chat when given)."""
        with self._cond:
            return [m for m in self.accepted if chat_id is None or m.chat_id == str(chat_id)]

    def requests_for(self, method: str) -> list[Request]:
        """Every answered call of one method."""
        with self._cond:
            return [r for r in self.requests if r.method == method]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[SentMessage]:
        """Wait until at least `count` messages were accepted; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.accepted) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    texts = [m.text[:40] for m in self.accepted]
                    raise AssertionError(f"expected {count} Telegram messages, got {texts}")
                self._cond.wait(remaining)
            return list(self.accepted)

    def max_per_second(self) -> int:
        """The most messages accepted within any 1.0 s window."""
        times = sorted(m.at for m in self.messages())
        best, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= WINDOW:
                start += 1
            best = max(best, end - start + 1)
        return best

    def violations(self) -> list[str]:
        """Every breach of the rate limits: a chat sent to twice within 1 s, a bot over 30/s."""
        messages = self.messages()
        found: list[str] = []
        by_chat: dict[str, list[float]] = collections.defaultdict(list)
        for message in messages:
            by_chat[message.chat_id].append(message.at)
        for chat_id, times in by_chat.items():
            times.sort()
            for before, after in itertools.pairwise(times):
                if after - before < CHAT_INTERVAL - CHAT_TOLERANCE:
                    found.append(f"chat {chat_id}: two messages {after - before:.3f} s apart")
        times = sorted(m.at for m in messages)
        start, over = 0, False
        for end, at in enumerate(times):
            while at - times[start] >= WINDOW:
                start += 1
            count = end - start + 1
            # Report each stretch over the limit once, not once per message in it.
            if count > BOT_PER_SECOND and not over:
                found.append(f"bot: {count} messages within {WINDOW} s")
            over = count > BOT_PER_SECOND
        return found

    # --- serving -----------------------------------------------------------------

    def answer(self, path: str, params: dict[str, Any] | None) -> tuple[int, Any]:
        """Decide the answer to one call: (status, JSON body or text)."""
        match = PATH.match(path)
        method = match.group("method") if match else path
        chat_id = None
        if isinstance(params, dict) and params.get("chat_id") is not None:
            chat_id = str(params["chat_id"])
        with self._cond:
            status, body = self._decide(match, method, params, chat_id)
            description = body.get("description") if isinstance(body, dict) else None
            self.requests.append(Request(method, chat_id, status, description))
            self._cond.notify_all()
        return status, body

    def _decide(
        self,
        match: re.Match[str] | None,
        method: str,
        params: dict[str, Any] | None,
        chat_id: str | None,
    ) -> tuple[int, Any]:
        """The answer, under the lock (the scripts are consumed in call order)."""
        if match is None or method not in METHODS:
            return _fail(404, "Not Found")
        if match.group("token") != self.token:
            return _fail(401, "Unauthorized")
        if self._server_errors:
            status = self._server_errors.popleft()
            if status == 500:
                return _fail(500, "Internal Server Error")
            return status, f"<html><body><h1>{status}</h1>nginx</body></html>"
        if params is None:
            return _fail(400, "Bad Request: can't parse request body")
        if method == "getMe":
            return _ok(
                {"id": self.bot_id, "is_bot": True, "first_name": "Test", "username": self.username}
            )
        if method == "setWebhook":
            return self._set_webhook(params)
        if method == "deleteWebhook":
            self.webhook = None
            return _ok(True, description="Webhook was deleted")
        if method == "getWebhookInfo":
            return _ok({"url": (self.webhook or {}).get("url", ""), "pending_update_count": 0})
        return self._send_message(params, chat_id)

    def _set_webhook(self, params: dict[str, Any]) -> tuple[int, Any]:
        """setWebhook: the real API's checks on the URL and the secret token."""
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if not url.startswith("https://"):
            return _fail(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if secret is not None and not SECRET_TOKEN.match(str(secret)):
            return _fail(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        if isinstance(allowed, str):
            allowed = json.loads(allowed)
        self.webhook = {"url": url, "secret_token": secret, "allowed_updates": allowed}
        return _ok(True, description="Webhook was set")

    def _send_message(self, params: dict[str, Any], chat_id: str | None) -> tuple[int, Any]:
        """sendMessage: scripts first, then the real API's checks, then accept."""
        if self._replies:
            return self._replies.popleft()
        if self._retry_after:
            seconds = self._retry_after.popleft()
            return _fail(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)
        if not chat_id:
            return _fail(400, "Bad Request: chat_id is empty")
        if not re.fullmatch(r"-?\d+|@\w+", chat_id):
            return _fail(400, "Bad Request: chat not found")
        text = params.get("text")
        parse_mode = params.get("parse_mode") or None
        if parse_mode not in (None, "HTML", "Markdown", "MarkdownV2"):
            return _fail(400, f"Bad Request: unsupported parse_mode {parse_mode}")
        if not isinstance(text, str) or not text.strip():
            return _fail(400, "Bad Request: message text is empty")
        try:
            visible = visible_text(text, parse_mode)
        except EntityError as exc:
            return _fail(400, f"Bad Request: can't parse entities: {exc}")
        if not visible.strip():
            return _fail(400, "Bad Request: message text is empty")
        if utf16_length(visible) > MAX_TEXT_LENGTH:
            return _fail(400, "Bad Request: message is too long")
        markup, problem = _reply_markup(params.get("reply_markup"))
        if problem:
            return _fail(400, f"Bad Request: {problem}")
        if chat_id in self._refused:
            status, description, parameters = self._refused[chat_id]
            return _fail(status, description, **parameters)
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        sent = SentMessage(chat_id, text, parse_mode, markup, next(counter), dict(params))
        self.accepted.append(sent)
        return _ok(
            {
                "message_id": sent.message_id,
                "date": int(time.time()),
                "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id},
                "text": visible,
            }
        )


def _reply_markup(raw: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The inline keyboard, or the Bot API's complaint about it."""
    if raw is None:
        return None, None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None, "can't parse reply keyboard markup JSON object"
    rows = raw.get("inline_keyboard") if isinstance(raw, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return None, "can't parse inline keyboard"
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not str(button.get("text") or "").strip():
                return None, "can't parse inline keyboard button: text must be non-empty"
            actions = set(button) - {"text"}
            if len(actions) != 1:
                return None, "text buttons are unallowed in the inline keyboard"
            url = button.get("url")
            if "url" in actions and not (
                isinstance(url, str) and url.startswith(BUTTON_URL_SCHEMES) and len(url) > 8
            ):
                return None, f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL"
    return raw, None


def message_update(
    chat_id: int,
    text: str,
    update_id: int = 1,
    first_name: str = "Anna",
    username: str | None = None,
) -> dict[str, Any]:
    """An Update as Telegram posts it to a webhook: a private chat's text message."""
    user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": first_name}
    if username:
        user["username"] = username
    chat = {**user, "type": "private"}
    chat.pop("is_bot")
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
            **(
                {"entities": [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]}
                if text.startswith("/")
                else {}
            ),
        },
    }


class _Handler(BaseHTTPRequestHandler):
    """HTTP glue: read the call's parameters, wait the latency, write the fake's answer."""

    fake: FakeTelegram
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: with Nagle on, the body waits for the client's
    # delayed ACK (40 ms), capping a sequential sender at 25 calls/s, under the limits tested.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._reply(*_fail(413, "Request Entity Too Large"))
            return
        self._serve(self.rfile.read(length))

    def _serve(self, raw: bytes) -> None:
        if self.fake.latency:
            time.sleep(self.fake.latency)
        parts = urlsplit(self.path)
        self._reply(*self.fake.answer(parts.path, self._params(parts.query, raw)))

    def _params(self, query: str, raw: bytes) -> dict[str, Any] | None:
        """The parameters from the query string and a JSON or form body; None if unreadable."""
        params: dict[str, Any] = dict(parse_qsl(query))
        if not raw:
            return params
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            if kind == "application/json":
                body = json.loads(raw)
                if not isinstance(body, dict):
                    return None
                params.update(body)
            elif kind == "application/x-www-form-urlencoded":
                params.update(parse_qsl(raw.decode(), keep_blank_values=True))
            else:
                return None
        except (ValueError, UnicodeDecodeError):
            return None
        return params

    def _reply(self, status: int, body: Any) -> None:
        if isinstance(body, str):
            data, kind = body.encode(), "text/html"
        else:
            data, kind = json.dumps(body).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
