"""Who may use the dashboard: the ASGI gate in front of every route.

The page listens on loopback only, but every local process (and every web
page the user's browser opens) can reach loopback. So:

- **Token.** A random token per daemon, in the URL ``envd up`` prints. A
  request carrying it as ``?token=`` gets a cookie and a redirect to the same
  path without it (the token leaves the address bar and history); after that
  the cookie is the credential. Without either, every route answers 403.
  Cookies are not isolated by port, so the cookie's name carries the project
  and the port: two projects' dashboards never read each other's.
- **Host.** Only ``127.0.0.1:PORT`` and ``localhost:PORT``: a DNS-rebound
  name reaches the socket but not the page.
- **Origin.** A request that names an origin must name this page's; a
  state-changing request must name one (browsers do on POST).
- **CSRF.** A state-changing request must also carry the page's CSRF token in
  a header (a form on another page cannot set headers), compared in constant
  time.
- Every answer says: no caching, no sniffing, no referrer, no framing, and a
  content security policy allowing only this origin's scripts and styles.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_HEADER = "x-envd-csrf"
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        b" connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
)


@dataclass(frozen=True)
class Keys:
    """The per-daemon secrets of one dashboard."""

    project: str
    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def cookie(self) -> str:
        # Cookie names allow only a few characters; project names are [a-z0-9_-].
        return "envd_" + re.sub(r"[^A-Za-z0-9_]", "_", self.project) + f"_{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?{urlencode({'token': self.token})}"

    def hosts(self) -> frozenset[str]:
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})

    def origins(self) -> frozenset[str]:
        return frozenset(f"http://{h}" for h in self.hosts())


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Guard:
    """ASGI middleware: refuse what the rules above refuse, before any route runs."""

    def __init__(self, app: ASGIApp, keys: Keys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no websockets, no lifespan: the server runs with lifespan off
        refusal = self._refusal(scope)
        if refusal is not None:
            await _plain(send, 403, refusal)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        if token and scope["method"] in _SAFE_METHODS:
            # Trade the token for the cookie and drop it from the address.
            rest = {k: v for k, v in query.items() if k != "token"}
            location = scope.get("path", "/") + (f"?{urlencode(rest, doseq=True)}" if rest else "")
            cookie = (
                f"{self.keys.cookie}={self.keys.token}; Path=/; HttpOnly; SameSite=Strict"
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", location.encode()),
                        (b"set-cookie", cookie),
                        *_HEADERS,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_HEADERS]}
            await send(message)

        await self.app(scope, receive, secured)

    def _refusal(self, scope: Scope) -> str | None:
        """Why this request is refused, or None."""
        host = _header(scope, b"host")
        if host not in self.keys.hosts():
            return "this dashboard answers only to 127.0.0.1 and localhost on its port"
        origin = _header(scope, b"origin")
        method = scope["method"]
        if origin is not None and origin not in self.keys.origins():
            return "requests from other pages are refused"
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        if token and method in _SAFE_METHODS:
            return None if hmac.compare_digest(token, self.keys.token) else "wrong token"
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(_header(scope, b"cookie") or "")
        except Exception:  # a malformed cookie header is no credential
            return "open the URL `envd ui` prints"
        morsel = jar.get(self.keys.cookie)
        if morsel is None or not hmac.compare_digest(morsel.value, self.keys.token):
            return "open the URL `envd ui` prints"
        if method not in _SAFE_METHODS:
            if origin is None:
                return "a change must come from the dashboard's own page"
            sent = _header(scope, CSRF_HEADER.encode()) or ""
            if not hmac.compare_digest(sent, self.keys.csrf):
                return "missing or wrong CSRF token"
        return None


async def _plain(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
