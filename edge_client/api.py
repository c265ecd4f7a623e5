"""HTTP client of the server's device API (models/wire). One `httpx.Client`, explicit timeouts.

Every answer that carries `server_time` updates the clock offset (server - device), measured against the
midpoint of the request so a slow network does not skew it by the whole round trip.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from models.wire import (
    DEVICE_PREFIX,
    AdhocTaskRequest,
    HeartbeatRequest,
    HeartbeatResponse,
    PairRequest,
    PairResponse,
    PlaceCues,
    ReferenceRead,
    ReferenceUpload,
    ResultAck,
    ResultUpload,
    TaskBatch,
    TaskRead,
    WardRoster,
)

USER_AGENT = "bedcheck-edge/0.1"
Answer = TypeVar("Answer", bound=BaseModel)


class ApiError(Exception):
    """The server answered with an error (`code` from models.errors) or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "", retryable: bool) -> None:
        super().__init__(message)
        self.status, self.code, self.retryable = status, code, retryable


def is_retryable_status(status: int) -> bool:
    """5xx and 429 may pass on retry; any other 4xx is the server's final word on this request."""
    return status >= 500 or status in (408, 429)


class DeviceApi:
    def __init__(self, server_url: str, token: str = "", *, timeout_s: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"user-agent": USER_AGENT}
        if token:
            headers["authorization"] = f"Bearer {token}"
        # Long-polls hold the read open for wait_s: their timeout is raised per call.
        self._client = httpx.Client(base_url=server_url.rstrip("/"), headers=headers, transport=transport,
                                    timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)))
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self.clock_offset_ms: int | None = None

    def close(self) -> None:
        self._client.close()

    def pair(self, code: str, name: str = "", engine_version: str = "",
             place: PlaceCues | None = None) -> PairResponse:
        """Registers this device with a one-time code; the token comes back once. The Wi-Fi networks in
        range (`place`) become part of the ward's fingerprint."""
        return self._call("POST", "/pair", PairResponse,
                          body=PairRequest(code=code, name=name, engine_version=engine_version, place=place))

    def heartbeat(self, outbox_pending: int, software_version: str = "", engine_version: str = "") -> HeartbeatResponse:
        # Not validated here: a tablet whose clock reset to 1970 must still ask, and hear the server's
        # clock_implausible (an ApiError the loop reports), instead of dying on its own schema.
        body = HeartbeatRequest.model_construct(device_time=datetime.now(UTC), outbox_pending=outbox_pending,
                                                software_version=software_version, engine_version=engine_version)
        return self._call("POST", "/heartbeat", HeartbeatResponse, body=body)

    def tasks(self, wait_s: float = 0.0) -> TaskBatch:
        """Pending tasks of the ward; with `wait_s` the server holds the request until one arrives."""
        timeout = httpx.Timeout(self._timeout_s + wait_s, connect=min(self._timeout_s, 5.0))
        return self._call("GET", "/tasks", TaskBatch, params={"wait_s": wait_s}, timeout=timeout)

    def adhoc_task(self, bed_id: int) -> TaskRead:
        """A task for checking one bed now (the nurse's own check)."""
        return self._call("POST", "/tasks/adhoc", TaskRead, body=AdhocTaskRequest(bed_id=bed_id), timed=False)

    def roster(self) -> WardRoster:
        return self._call("GET", "/roster", WardRoster)

    def add_reference(self, bed_id: int, body: ReferenceUpload) -> ReferenceRead:
        """Uploads a reference frame of one of the ward's beds."""
        return self._call("POST", f"/beds/{bed_id}/references", ReferenceRead, body=body, timed=False)

    def upload(self, result: ResultUpload) -> ResultAck:
        return self._call("POST", "/results", ResultAck, body=result)

    def _call(self, method: str, path: str, answer: type[Answer], *, body: BaseModel | None = None,
              params: dict[str, Any] | None = None, timeout: httpx.Timeout | None = None,
              timed: bool = True) -> Answer:
        kwargs: dict[str, Any] = {"params": params}
        if body is not None:
            kwargs["content"] = body.model_dump_json()
            kwargs["headers"] = {"content-type": "application/json"}
        if timeout is not None:
            kwargs["timeout"] = timeout
        sent = time.time()
        try:
            response = self._client.request(method, DEVICE_PREFIX + path, **kwargs)
        except httpx.TransportError as e:
            raise ApiError(f"server unreachable: {type(e).__name__}", retryable=True) from e
        received = time.time()
        if response.status_code >= 400:
            raise _error_of(response)
        parsed = answer.model_validate(response.json())
        server_time = getattr(parsed, "server_time", None)
        if timed and server_time is not None:
            # A long-poll's server_time is stamped when it answers, i.e. just before it is received.
            device_at = received if path == "/tasks" else sent + (received - sent) / 2
            self._set_offset(server_time, datetime.fromtimestamp(device_at, UTC))
        return parsed

    def _set_offset(self, server_time: datetime, device_time: datetime) -> None:
        with self._lock:
            self.clock_offset_ms = int((server_time - device_time) / timedelta(milliseconds=1))


def _error_of(response: httpx.Response) -> ApiError:
    try:
        data = response.json()
        code, message = str(data.get("code", "")), str(data.get("message", ""))
    except ValueError:
        code, message = "", response.text[:200]
    return ApiError(f"{response.status_code} {code}: {message}".strip(), status=response.status_code, code=code,
                    retryable=is_retryable_status(response.status_code))
