"""HTTP edges of the server: slow clients cut off, nothing personal cached.

Two layers, because neither alone can do it: the ASGI middleware sees request bodies (how long they take)
and responses; only the connection protocol sees a client that never finishes its headers (slowloris),
since the app is not called until the headers are complete.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from models.errors import PayloadTooLarge

# Static files carry nothing personal; everything else (pages, API answers, evidence) is never cached.
# The console's static files and the bedside app's hashed bundles, runtime and model (server/bedside/routes.py).
CACHEABLE_PREFIXES = ("/console/static/", "/bedside/assets/", "/bedside/ort/", "/bedside/models/")
DEFAULT_HEADER_TIMEOUT_S = 10.0


class HttpGuard:
    """Pure ASGI middleware: bodies limited in size as they stream and in time; answers are not cached.

    A chunked upload has no Content-Length: the receive channel itself refuses the byte past the limit, so
    nothing larger is ever buffered (before authentication, too). FastAPI's `max_body_size` does the same
    but answers in plain text, replacing our JSON error shape; hence this. The time bound keeps a client
    trickling a body a byte at a time from holding a worker.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, body_timeout_s: float) -> None:
        self.app, self.max_bytes, self.body_timeout_s = app, max_bytes, body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _send_json(send, 413, PayloadTooLarge(max_bytes=self.max_bytes).to_dict())
            return
        received = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s

        async def timed_receive() -> Message:
            nonlocal deadline, received
            if deadline == float("inf"):
                return await receive()  # body complete: a long-poll may wait for a disconnect as long as it likes
            try:
                message = await asyncio.wait_for(receive(), timeout=max(deadline - loop.time(), 0.001))
            except TimeoutError:
                # An HTTPException is what FastAPI lets through from a body read (it wraps anything else in a 400).
                raise HTTPException(408, f"The request body did not arrive within {self.body_timeout_s:g} s.") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, PayloadTooLarge.default_message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                deadline = float("inf")
            return message

        async def no_store_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not scope["path"].startswith(CACHEABLE_PREFIXES):
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                message = {**message, "headers": [*headers, (b"cache-control", b"no-store")]}
            await send(message)

        await self.app(scope, timed_receive, no_store_send)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"cache-control", b"no-store"), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": data})


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for the request line and headers.

    uvicorn arms its keep-alive timer only after a response and cancels it on any byte received, so a
    client that opens a connection and sends one header byte every few seconds holds it forever. Here a
    connection waiting for headers is closed `header_timeout_s` after it opened or after its last response.
    """

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout_s = float(getattr(config, "header_timeout_s", DEFAULT_HEADER_TIMEOUT_S))
        self._header_timer: asyncio.TimerHandle | None = None
        self._cycle_seen: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and self.cycle is not self._cycle_seen:
            self._cycle_seen = self.cycle  # headers of a new request are complete
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        waiting_for_headers = self.cycle is None or self.cycle is self._cycle_seen and self.cycle.response_complete
        if waiting_for_headers and not self.transport.is_closing():
            try:
                self.conn.send(h11.ConnectionClosed())
            except h11.LocalProtocolError:
                pass
            self.transport.close()


def uvicorn_config(app: Any, *, header_timeout_s: float, **options: Any) -> Any:
    """A uvicorn Config with the guarded protocol and short keep-alive; used by `bedcheck serve` and tests."""
    import uvicorn

    options.setdefault("timeout_keep_alive", 5)
    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; create_app trusts only BEDCHECK_TRUSTED_PROXIES.
    options["proxy_headers"] = False
    # 16 KiB of request line and headers is plenty for our clients; uvicorn's default is the same, said here.
    options.setdefault("h11_max_incomplete_event_size", 16 * 1024)
    config = uvicorn.Config(app, http=GuardedH11Protocol, **options)
    config.header_timeout_s = header_timeout_s  # type: ignore[attr-defined]
    return config
