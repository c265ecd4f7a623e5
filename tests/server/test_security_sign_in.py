"""Guessing passwords against a real server on loopback: per-account and per-address throttle, locks, audit
without a record per attempt, the same rule for the console form and the API; the password policy."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models.errors import NameRefused, WeakPassword
from server.accounts.passwords import check_password_policy
from server.accounts.service import create_user
from server.accounts.tables import Role, SignInThrottle, ThrottleScope, UserAccount
from server.accounts.throttle import ThrottlePolicy
from server.audit.tables import AuditRecord
from server.db import make_engine
from server.settings import ServerSettings
from tests import factories
from tests.console.helpers import csrf_of

TOKEN = "/api/v1/auth/token"


@pytest.fixture
def sup(engine) -> UserAccount:
    with Session(engine, expire_on_commit=False) as db:
        return factories.user(db, "sup", Role.SUPERVISOR)


def _token(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post(TOKEN, json={"username": username, "password": password})


def _actions(engine, action: str) -> list[AuditRecord]:
    with Session(engine) as db:
        return list(db.exec(select(AuditRecord).where(AuditRecord.action == action).order_by(col(AuditRecord.seq))))


def test_after_thirty_wrong_passwords_the_right_one_is_refused_with_429_and_retry_after(sup, live_server) -> None:
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        statuses = [_token(client, "sup", f"wrong-guess-{i}").status_code for i in range(30)]
        # Five free failures; then each further one waits 1 s, 2 s, 4 s... and attempts meanwhile are refused.
        assert statuses[:5] == [401] * 5 and statuses[5] == 429 and statuses.count(401) <= 8
        right = _token(client, "sup", factories.PASSWORD)
    assert right.status_code == 429
    body = right.json()
    assert body["code"] == "sign_in_throttled" and body["details"]["retry_after_s"] >= 1
    assert int(right.headers["retry-after"]) == body["details"]["retry_after_s"]
    assert "access_token" not in right.text


def test_the_default_schedule_delays_after_five_failures_doubling_and_locks_at_ten_for_fifteen_minutes() -> None:
    policy = ThrottlePolicy.from_settings(ServerSettings(environment="test"))
    assert [policy.account.wait_s(n) for n in range(1, 12)] == [0, 0, 0, 0, 1, 2, 4, 8, 16, 900, 900]
    assert policy.address.wait_s(19) == 0 and policy.address.wait_s(20) == 1 and policy.address.wait_s(50) == 900


def test_delays_grow_then_the_account_locks_and_the_lock_is_audited(engine, sup, live_server) -> None:
    # The default schedule, shortened to lock at 7 failures (delays of 1 s and 2 s before it).
    server = live_server(sign_in_lock_after=7)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for failure in range(1, 8):
            assert _token(client, "sup", "wrong-password-9").status_code == 401, failure
            if failure in (5, 6):
                waiting = _token(client, "sup", factories.PASSWORD)  # inside the delay: not even checked
                assert waiting.status_code == 429 and waiting.json()["details"]["locked"] is False
                assert waiting.headers["retry-after"] == str(2 ** (failure - 5))  # 1 s, then 2 s
                time.sleep(2 ** (failure - 5) + 0.1)
        locked = _token(client, "sup", factories.PASSWORD)
        assert locked.status_code == 429 and locked.json()["details"]["locked"] is True
        assert 890 <= int(locked.headers["retry-after"]) <= 900
        # The console form answers the same lock, in Chinese, with the wait.
        form = client.get("/console/sign-in")
        page = client.post("/console/sign-in", data={"csrf_token": csrf_of(form), "username": "sup",
                                                     "password": factories.PASSWORD})
        assert page.status_code == 429 and "bedcheck_session" not in page.headers.get("set-cookie", "")
        assert "登录失败次数过多，已暂时锁定，请等待15分钟后再试" in page.text
        assert 890 <= int(page.headers["retry-after"]) <= 900
    [lock] = _actions(engine, "sign_in.locked")
    assert lock.object_id == "account:sup" and lock.data["failures"] == 7


def test_the_console_form_is_throttled_by_the_same_rule_with_a_chinese_message(engine, sup, live_server) -> None:
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        form = browser.get("/console/sign-in")
        for _ in range(5):
            wrong = browser.post("/console/sign-in", data={"csrf_token": csrf_of(form), "username": "sup",
                                                           "password": "wrong-password-1"})
            assert wrong.status_code == 401
        page = browser.post("/console/sign-in", data={"csrf_token": csrf_of(form), "username": "sup",
                                                      "password": factories.PASSWORD})
        assert page.status_code == 429 and page.headers["retry-after"] == "1"
        assert "登录失败次数过多，请等待1秒钟后再试" in page.text
        # Failures on the form count for the API too: one rule, one table.
        assert _token(browser, "sup", factories.PASSWORD).status_code == 429
    with Session(engine) as db:
        row = db.exec(select(SignInThrottle).where(SignInThrottle.key == "sup")).one()
        assert row.failures == 5


def test_one_address_guessing_many_accounts_is_delayed_for_every_account(engine, sup, live_server) -> None:
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(20):  # 20 accounts, one guess each: no account is throttled, the address is
            assert _token(client, f"user{i}", "wrong-password-1").status_code == 401
        refused = _token(client, "sup", factories.PASSWORD)
    assert refused.status_code == 429 and refused.json()["code"] == "sign_in_throttled"
    with Session(engine) as db:
        assert db.exec(select(SignInThrottle.failures).where(SignInThrottle.key == "127.0.0.1")).one() == 20


def test_a_client_rotating_x_forwarded_for_is_still_throttled_by_its_own_address(engine, sup, live_server) -> None:
    # No proxy is configured (the default): the header is the client's own words, and it decides nothing.
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(20):
            forged = {"x-forwarded-for": f"203.0.113.{i}", "forwarded": f"for=198.51.100.{i}"}
            assert client.post(TOKEN, json={"username": f"user{i}", "password": "wrong-password-1"},
                               headers=forged).status_code == 401
        refused = client.post(TOKEN, json={"username": "sup", "password": factories.PASSWORD},
                              headers={"x-forwarded-for": "203.0.113.250"})
    assert refused.status_code == 429 and refused.json()["code"] == "sign_in_throttled"
    with Session(engine) as db:
        keys = set(db.exec(select(SignInThrottle.key).where(SignInThrottle.scope == ThrottleScope.ADDRESS)))
    assert keys == {"127.0.0.1"}


def test_a_configured_proxy_s_x_forwarded_for_names_the_client(engine, sup, live_server) -> None:
    server = live_server(trusted_proxies="10.9.9.9, 127.0.0.1/32")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(2):
            assert client.post(TOKEN, json={"username": "sup", "password": "wrong-password-1"},
                               headers={"x-forwarded-for": f"203.0.113.{i}"}).status_code == 401
    with Session(engine) as db:
        keys = set(db.exec(select(SignInThrottle.key).where(SignInThrottle.scope == ThrottleScope.ADDRESS)))
    assert keys == {"203.0.113.0", "203.0.113.1"}


def test_an_addresss_failures_are_forgotten_sooner_than_an_accounts(sup, live_server) -> None:
    # A hospital shares one address: its failures are forgotten after a short quiet spell (here 1 s).
    server = live_server(sign_in_address_delay_after=2, sign_in_address_forget_after_s=1.0)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert [_token(client, f"typo{i}", "wrong-password-1").status_code for i in range(2)] == [401, 401]
        assert _token(client, "sup", factories.PASSWORD).status_code == 429  # the address waits 1 s
        time.sleep(1.3)
        assert _token(client, "typo9", "wrong-password-1").status_code == 401  # forgotten: one failure now
        assert _token(client, "sup", factories.PASSWORD).status_code == 200


def test_the_throttle_holds_across_server_processes(sup, live_server) -> None:
    first, second = live_server(), live_server()  # two apps on one database, as two workers would be
    with httpx.Client(base_url=first.url, timeout=30) as one, httpx.Client(base_url=second.url, timeout=30) as two:
        for _ in range(5):
            assert _token(one, "sup", "wrong-password-1").status_code == 401
        assert _token(two, "sup", factories.PASSWORD).status_code == 429


def test_a_success_clears_the_account_but_a_few_failures_never_lock_it(sup, live_server) -> None:
    server = live_server()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for _ in range(3):
            for _ in range(4):
                assert _token(client, "sup", "wrong-password-1").status_code == 401
            assert _token(client, "sup", factories.PASSWORD).status_code == 200


def test_a_flood_of_wrong_passwords_is_counted_in_one_audit_record_not_one_per_attempt(engine, sup,
                                                                                        live_server) -> None:
    server = live_server(sign_in_audit_interval_s=600.0)  # one interval: however slow the machine is today
    with httpx.Client(base_url=server.url, timeout=30) as client:
        statuses = [_token(client, "sup", f"guess-number-{i}").status_code for i in range(120)]
    assert 429 in statuses and 200 not in statuses
    with Session(engine) as db:
        during = db.exec(select(AuditRecord.action)).all()
    assert "sign_in.refused" not in during  # counted in memory for now (one record per interval)
    server.stop()
    [summary] = _actions(engine, "sign_in.refused")
    assert summary.data["total"] == 120
    assert summary.data["counts"] == {"invalid_credential": statuses.count(401),
                                      "sign_in_throttled": statuses.count(429)}


def test_an_administrator_can_unlock_a_locked_account_from_the_cli(engine, db_url, tmp_path, sup,
                                                                   live_server) -> None:
    from server.cli import app

    server = live_server(sign_in_delay_after=3, sign_in_lock_after=3)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert [_token(client, "sup", "wrong-password-1").status_code for _ in range(3)] == [401] * 3
        assert _token(client, "sup", factories.PASSWORD).json()["details"]["locked"] is True
        env = {"BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_DATA_DIR": str(tmp_path)}
        result = CliRunner().invoke(app, ["users", "unlock", "sup"], env=env)
        assert result.exit_code == 0 and "cleared" in result.output
        assert _token(client, "sup", factories.PASSWORD).status_code == 200
    assert [r.object_id for r in _actions(engine, "sign_in.unlocked")] == ["account:sup"]


@pytest.mark.parametrize("password, rule", [
    ("a", "min_length"), ("", "min_length"), ("aaaaaaaaaaaa", "one_character"), ("abcdefghijk", "one_kind"),
    ("12345678901", "one_kind"), ("nurse-zhang-2026", "contains_username"), ("password123", "common_password"),
    ("1q2w3e4r5t", "common_password"), ("QwertyUIOP", "common_password"), ("123qweasdzxc", "common_password")])
def test_weak_passwords_are_refused_with_the_rule_they_break(password, rule) -> None:
    with pytest.raises(WeakPassword) as refused:
        check_password_policy(password, username="Nurse-Zhang")
    assert refused.value.details["rule"] == rule


@pytest.mark.parametrize("password", [factories.PASSWORD, "correct horse battery staple", "Zh4ngSan!x"])
def test_reasonable_passwords_pass_the_policy(password) -> None:
    check_password_policy(password, username="nurse")


@pytest.mark.parametrize("password", ["a", "", "password123"])
def test_the_cli_refuses_a_weak_password_with_exit_2_and_no_traceback(db_url, tmp_path, password) -> None:
    from server.cli import app

    env = {"BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["users", "create", "clerk", "admin", "--password", password], env=env)
    assert result.exit_code == 2, result.output
    assert "password" in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    if password == "password123":
        assert "common" in result.output
    ok = CliRunner().invoke(app, ["users", "create", "clerk", "admin", "--password", "Desk-2026-admit"], env=env)
    assert ok.exit_code == 0, ok.output
    again = CliRunner().invoke(app, ["users", "create", "clerk", "admin", "--password", "Desk-2026-admit"], env=env)
    assert again.exit_code == 1 and "exists" in again.output and "Traceback" not in again.output


@pytest.mark.parametrize("username", ["adm\u202ein", "clerk\u200b", "clerk\u3000two", "\u200b", "a\x1bb"])
def test_a_user_name_with_invisible_bidi_or_control_characters_is_refused(db_url, tmp_path, username) -> None:
    from server.cli import app

    env = {"BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_DATA_DIR": str(tmp_path)}
    result = CliRunner().invoke(app, ["users", "create", username, "admin", "--password", "Desk-2026-admit"],
                                env=env)
    assert result.exit_code == 2, result.output
    assert "U+" in result.output and "Traceback" not in result.output
    engine = make_engine(db_url)
    try:
        with Session(engine) as db:
            with pytest.raises(NameRefused):
                create_user(db, username=username, password="Desk-2026-admit", role=Role.ADMIN)
            assert db.exec(select(UserAccount)).first() is None
    finally:
        engine.dispose()
