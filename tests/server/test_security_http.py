"""Attacks against a real server on loopback: forged secrets, floods, huge and slow bodies, slow headers,
cookie-riding writes, cached personal pages, the API map."""

from __future__ import annotations

import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlmodel import Session, func, select

from models.wire import DEVICE_PREFIX
from server.accounts.tables import Role
from server.audit.tables import AuditRecord
from server.settings import DEV_SECRET, ServerSettings
from tests import factories
from tests.console.helpers import csrf_of, sign_in

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _forged(uid: int, secret: str = DEV_SECRET) -> str:
    return URLSafeTimedSerializer(secret, salt="user-token").dumps({"uid": uid, "iat": time.time()})


def test_a_default_start_has_a_random_secret_and_refuses_tokens_signed_with_the_placeholder(
        engine, live_server, tmp_path) -> None:
    with Session(engine, expire_on_commit=False) as db:
        admin = factories.user(db, "root", Role.ADMIN)
    server = live_server(environment="development", data_dir=tmp_path)
    forged = {"authorization": f"Bearer {_forged(admin.id or 0)}"}
    assert httpx.get(f"{server.url}/api/v1/devices", headers=forged).status_code == 401
    assert httpx.post(f"{server.url}/api/v1/devices/pairing-codes", json={"ward_id": 1},
                      headers=forged).status_code == 401
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "audit_key").stat().st_mode) == 0o600
    # The same file on the next start (several workers, a restart): tokens signed with it stay valid.
    genuine = {"authorization": f"Bearer {_forged(admin.id or 0, key_file.read_text().strip())}"}
    assert httpx.get(f"{server.url}/api/v1/devices", headers=genuine).status_code == 200
    assert "environment=development" in server.app.state.settings.startup_message()


@pytest.mark.parametrize("environment", ["development", "production"])
def test_the_placeholder_secret_is_refused_outside_demo_and_tests(environment, tmp_path) -> None:
    with pytest.raises(ValueError, match="placeholder"):
        ServerSettings(environment=environment, secret_key=DEV_SECRET, data_dir=tmp_path)
    assert ServerSettings(environment="demo", secret_key=DEV_SECRET, data_dir=tmp_path).secret == DEV_SECRET


def test_a_world_readable_key_file_is_refused(tmp_path) -> None:
    (tmp_path / "secret_key").write_text("x" * 64)
    (tmp_path / "secret_key").chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        ServerSettings(environment="production", data_dir=tmp_path)


@SQLITE_ONLY
def test_sixty_concurrent_forged_device_tokens_get_401_and_are_counted_not_each_audited(engine, live_server) -> None:
    server = live_server()
    with Session(engine) as db:
        before = db.exec(select(func.count()).select_from(AuditRecord)).one()

    def attempt(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            return client.get(f"{DEVICE_PREFIX}/roster", headers={"authorization": f"Bearer forged-{i}.x"}).status_code

    with ThreadPoolExecutor(60) as pool:
        statuses = list(pool.map(attempt, range(60)))
    assert statuses == [401] * 60
    with Session(engine) as db:
        assert db.exec(select(func.count()).select_from(AuditRecord)).one() == before
    assert sum(server.app.state.refusals.flush().values()) == 60


def _chunked_post(port: int, path: str, total_bytes: int, chunk: int = 64 * 1024) -> tuple[bytes, int]:
    """Sends a chunked body until the server answers or closes; returns the answer and the bytes sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Transfer-Encoding: chunked\r\n\r\n".encode())
        piece = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
        sock.settimeout(0.001)
        answer = b""
        try:
            while sent < total_bytes:
                sock.sendall(piece)
                sent += chunk
                try:
                    answer += sock.recv(65536)
                    if answer:
                        break
                except (TimeoutError, BlockingIOError):
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(5)
        try:
            while b"}" not in answer:  # the end of the JSON error body
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (TimeoutError, ConnectionResetError):
            pass
    return answer, sent


@SQLITE_ONLY
def test_a_chunked_48_mib_body_is_cut_at_the_limit_before_authentication(live_server) -> None:
    server = live_server(max_body_bytes=4 * 1024 * 1024)
    answer, sent = _chunked_post(server.port, f"{DEVICE_PREFIX}/results/batch", 48 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer
    assert sent < 12 * 1024 * 1024  # the limit plus what socket buffers held, not the whole 48 MiB


@SQLITE_ONLY
def test_slow_headers_are_cut_off_and_honest_clients_still_served(live_server) -> None:
    server = live_server(header_timeout_s=2.0)
    held = []
    for _ in range(100):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        held.append(sock)
    stop = threading.Event()

    def trickle() -> None:  # a header line every half second: slowloris keeps each connection "active"
        while not stop.wait(0.5):
            for sock in held:
                try:
                    sock.sendall(b"X-a: b\r\n")
                except OSError:
                    pass

    threading.Thread(target=trickle, daemon=True).start()
    try:
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
        time.sleep(4.0)
        closed = 0
        for sock in held:
            sock.settimeout(2)
            try:
                closed += sock.recv(1024) == b""
            except (ConnectionResetError, BrokenPipeError):
                closed += 1
            except TimeoutError:
                pass
        assert closed == 100
        assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200
    finally:
        stop.set()
        for sock in held:
            sock.close()


@SQLITE_ONLY
def test_a_body_trickled_slower_than_the_body_timeout_is_refused(live_server) -> None:
    server = live_server(body_timeout_s=1.0)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"POST {DEVICE_PREFIX}/pair HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{".encode())
        started = time.monotonic()
        answer = b""
        while b"request_timeout" not in answer and (data := sock.recv(4096)):
            answer += data
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer
    assert time.monotonic() - started < 5


@pytest.fixture
def console_world(engine):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a"])
        factories.user(db, "sup", Role.SUPERVISOR)
        factories.user(db, "root", Role.ADMIN)
    return world


def test_cookie_authenticated_api_writes_need_the_csrf_header(console_world, live_server) -> None:
    server = live_server()
    browser = sign_in(server.url, "sup")
    ward = console_world.ward_ids[0]
    code = browser.post("/api/v1/devices/pairing-codes", json={"ward_id": ward})
    assert code.status_code == 403 and code.json()["code"] == "csrf_failed"
    roster = browser.post("/api/v1/roster/import", files={"file": ("r.csv", b"hospital_code\n", "text/csv")})
    assert roster.status_code == 403 and roster.json()["code"] == "csrf_failed"
    forged_header = browser.post("/api/v1/devices/pairing-codes", json={"ward_id": ward},
                                 headers={"x-csrf-token": "not-a-token"})
    assert forged_header.status_code == 403
    token = csrf_of(browser.get("/console/dashboard"))
    ok = browser.post("/api/v1/devices/pairing-codes", json={"ward_id": ward}, headers={"x-csrf-token": token})
    assert ok.status_code == 200
    assert browser.get("/api/v1/devices").status_code == 200  # reads need no token
    browser.close()


def test_personal_answers_are_not_cached(console_world, live_server, engine) -> None:
    server = live_server()
    browser = sign_in(server.url, "sup")
    for path in ("/console/flags", "/console/dashboard", "/api/v1/flags"):
        response = browser.get(path)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store", path
    with Session(engine) as db:
        code = factories.pairing_code(db, console_world.ward_ids[0])
        db.commit()
    token = httpx.post(f"{server.url}{DEVICE_PREFIX}/pair", json={"code": code}).json()["token"]
    roster = httpx.get(f"{server.url}{DEVICE_PREFIX}/roster", headers={"authorization": f"Bearer {token}"})
    assert roster.status_code == 200 and roster.headers["cache-control"] == "no-store"
    assert browser.get("/console/sign-in").headers["cache-control"] == "no-store"
    browser.close()


def test_the_api_map_is_for_signed_in_administrators_outside_the_demo(console_world, live_server) -> None:
    server = live_server()
    for path in ("/openapi.json", "/docs"):
        assert httpx.get(f"{server.url}{path}").status_code == 401
    sup = sign_in(server.url, "sup")
    assert sup.get("/openapi.json").status_code == 403
    admin = sign_in(server.url, "root")
    assert admin.get("/openapi.json").json()["info"]["title"] == "bedcheck"
    assert admin.get("/docs").status_code == 200
    sup.close()
    admin.close()
