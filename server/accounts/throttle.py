"""Sign-in that resists guessing: the one password check every path uses (console form, API token, CLI).

Per account (the username as typed, known or not) and per client address, in the `sign_in_throttle` table so
every server process counts the same. With the default settings (server/settings.py, `sign_in_*`):

    account: failures 1-5 free; then each attempt waits 1 s, 2 s, 4 s, 8 s, 16 s after the last failure;
             at 10 failures locked 15 min, and again 15 min after every further failure
    address: the same steps from 20 failures (any accounts), locked at 50
    a success clears its account (its address only gives back the attempt it was charged);
    an account's failures are forgotten 24 h after its last one, an address's after 15 min: a hospital's
    staff share one address, and a day of ordinary typos must not lock them all out

An attempt is charged as a failure *before* its password is checked (and given back on success): parallel
guesses cannot all slip through before the first one is counted. While a key waits, no password is checked
at all, so the right password is refused too (`sign_in_throttled`, 429, Retry-After). Refusals are counted
and written as one audit record per interval; each lock is one audit record. Nothing is audited per attempt,
so a flood cannot write to the audit trail at will.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models.errors import InvalidCredential, SignInThrottled
from server.accounts.service import authenticate
from server.accounts.tables import SignInThrottle, ThrottleScope, UserAccount
from server.audit import service as audit
from server.audit.refusals import RefusalCounter
from server.db import claim_write, utcnow


@dataclass(frozen=True)
class ThrottleRule:
    delay_after: int
    lock_after: int
    base_delay_s: float
    lock_s: float
    forget_after_s: float  # failures are forgotten this long after the last one

    def wait_s(self, failures: int) -> float:
        """How long the next attempt waits after the `failures`-th failure."""
        if failures >= self.lock_after:
            return self.lock_s
        if failures >= self.delay_after:
            return float(min(self.base_delay_s * 2 ** (failures - self.delay_after), self.lock_s))
        return 0.0


@dataclass(frozen=True)
class ThrottlePolicy:
    account: ThrottleRule
    address: ThrottleRule

    @classmethod
    def from_settings(cls, settings: Any) -> ThrottlePolicy:
        def rule(delay_after: int, lock_after: int, forget_after_s: float) -> ThrottleRule:
            return ThrottleRule(min(delay_after, lock_after), lock_after, settings.sign_in_delay_base_s,
                                settings.sign_in_lock_s, forget_after_s)

        return cls(rule(settings.sign_in_delay_after, settings.sign_in_lock_after, settings.sign_in_forget_after_s),
                   rule(settings.sign_in_address_delay_after, settings.sign_in_address_lock_after,
                        settings.sign_in_address_forget_after_s))

    def rule(self, scope: str) -> ThrottleRule:
        return self.account if scope == ThrottleScope.ACCOUNT else self.address


def sign_in(db: Session, *, username: str, password: str, address: str | None, policy: ThrottlePolicy,
            refusals: RefusalCounter | None = None) -> UserAccount:
    """Checks a password under the throttle: the user, or SignInThrottled / InvalidCredential. Commits."""
    keys = [(ThrottleScope.ACCOUNT.value, username.strip().lower()[:120])]
    if address:
        keys.append((ThrottleScope.ADDRESS.value, address[:120]))
    _charge(db, keys, policy, refusals)
    try:
        user = authenticate(db, username=username, password=password)
    except InvalidCredential:
        _after_failure(db, keys, policy, refusals)
        raise
    _after_success(db, keys, policy)
    return user


def _rows(db: Session, keys: list[tuple[str, str]]) -> list[SignInThrottle]:
    """The keys' rows, created when missing, locked for this transaction (PostgreSQL; SQLite: the write gate)."""
    claim_write(db)
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = []
    for scope, key in keys:
        db.execute(insert(SignInThrottle).values(scope=scope, key=key, failures=0)
                   .on_conflict_do_nothing(index_elements=["scope", "key"]))
        rows.append(db.exec(select(SignInThrottle).where(SignInThrottle.scope == scope, SignInThrottle.key == key)
                            .with_for_update().execution_options(populate_existing=True)).one())
    return rows


def _charge(db: Session, keys: list[tuple[str, str]], policy: ThrottlePolicy,
            refusals: RefusalCounter | None) -> None:
    now = utcnow()
    for scope in ThrottleScope:
        db.execute(delete(SignInThrottle).where(  # forgotten, unless still waiting (a lock outlasting the window)
            SignInThrottle.scope == scope.value,
            col(SignInThrottle.last_failure_at) < now - timedelta(seconds=policy.rule(scope).forget_after_s),
            or_(col(SignInThrottle.blocked_until).is_(None), col(SignInThrottle.blocked_until) <= now)))
    rows = _rows(db, keys)
    waits: list[tuple[float, bool]] = []
    for row in rows:
        if row.blocked_until is not None and row.blocked_until > now:
            waits.append(((row.blocked_until - now).total_seconds(),
                          row.failures >= policy.rule(row.scope).lock_after))
    if waits:
        _count(db, refusals, SignInThrottled.code.value)
        db.commit()
        wait_s = math.ceil(max(w for w, _ in waits))
        raise SignInThrottled(f"too many failed sign-ins; try again in {wait_s} s", retry_after_s=wait_s,
                              locked=any(locked for _, locked in waits))
    for row in rows:
        row.failures += 1
        row.last_failure_at = now
        row.blocked_until = _until(now, policy.rule(row.scope).wait_s(row.failures))
        db.add(row)
    db.commit()


def _after_failure(db: Session, keys: list[tuple[str, str]], policy: ThrottlePolicy,
                   refusals: RefusalCounter | None) -> None:
    now = utcnow()
    for row in _rows(db, keys):
        rule = policy.rule(row.scope)
        # The wait runs from the answer, not from the charge: the password check itself takes a while.
        until = _until(now, rule.wait_s(row.failures))
        if until is not None and (row.blocked_until is None or until > row.blocked_until):
            row.blocked_until = until
            db.add(row)
        if row.failures >= rule.lock_after:
            audit.record(db, actor="system", action="sign_in.locked", object_type="sign_in_throttle",
                         object_id=f"{row.scope}:{row.key}",
                         data={"failures": row.failures, "locked_s": rule.lock_s})
    _count(db, refusals, InvalidCredential.code.value)
    db.commit()


def _after_success(db: Session, keys: list[tuple[str, str]], policy: ThrottlePolicy) -> None:
    for row in _rows(db, keys):
        # The account is proven; the address only gets back the attempt it was charged (an attacker's own
        # account must not wipe the address's count).
        row.failures = 0 if row.scope == ThrottleScope.ACCOUNT else max(0, row.failures - 1)
        if policy.rule(row.scope).wait_s(row.failures) == 0:
            row.blocked_until = None
        db.add(row)
    db.commit()


def _until(now: datetime, wait_s: float) -> datetime | None:
    return now + timedelta(seconds=wait_s) if wait_s > 0 else None


def _count(db: Session, refusals: RefusalCounter | None, code: str) -> None:
    counts = refusals.add(code) if refusals is not None else None
    if counts:
        audit.record(db, actor="system", action="sign_in.refused", object_type="request", object_id="summary",
                     data={"counts": counts, "total": sum(counts.values())})


def unlock(db: Session, *, username: str) -> bool:
    """Clears an account's failures (an administrator, after the owner proved who they are); commits."""
    row = db.exec(select(SignInThrottle).where(SignInThrottle.scope == ThrottleScope.ACCOUNT.value,
                                               SignInThrottle.key == username.strip().lower())).first()
    if row is None:
        return False
    row.failures, row.blocked_until = 0, None
    db.add(row)
    audit.record(db, actor="cli", action="sign_in.unlocked", object_type="sign_in_throttle",
                 object_id=f"{ThrottleScope.ACCOUNT.value}:{row.key}")
    db.commit()
    return True
