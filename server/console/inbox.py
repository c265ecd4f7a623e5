"""我的待办: what this user can act on now, one rule for the landing page's counts and the queue's default view.

Which statuses a role acts on is read from the workflow's table (server/flags/workflow.TRANSITIONS), not
listed here: reviewers make first reviews, supervisors and administrators the final reviews and the decisions
on appeals (never on a flag they first-reviewed themselves), hospital staff appeal (their to-do list's rule,
server/console/todo.py, with its deadline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, func, select

from server.accounts.tables import Role, UserAccount
from server.flags import workflow
from server.flags.tables import Flag, FlagStatus, Review

MINE_KEY = "mine"  # the queue's pseudo-status of "what I can act on now"


def _level_of(user: UserAccount) -> workflow.Level:
    if user.role == Role.HOSPITAL_STAFF:
        return workflow.Level.APPEAL
    if user.role in workflow.FINAL_ROLES:
        return workflow.Level.FINAL_REVIEW
    return workflow.Level.FIRST_REVIEW


def statuses(user: UserAccount) -> dict[FlagStatus, workflow.Level]:
    """The statuses from which this user's role makes its own level of move."""
    level = _level_of(user)
    return {frm: move.level for (frm, _to), move in workflow.TRANSITIONS.items()
            if move.level == level and user.role in move.roles}


def condition(db: Session, user: UserAccount) -> Any:
    """A WHERE clause: the flags this user can act on now (scope is added by the flag query itself)."""
    if user.role == Role.HOSPITAL_STAFF:
        from server.console import todo

        return col(Flag.id).in_([item.flag.id for item in todo.todo(db, user)] or [-1])
    mine = col(Flag.status).in_(list(statuses(user)))
    if _level_of(user) == workflow.Level.FINAL_REVIEW:
        # The final review is another person's: flags this user first-reviewed wait for someone else.
        own = select(Review.flag_id).where(Review.actor == user.username,
                                           Review.to_status == FlagStatus.FIRST_REVIEWED)
        mine = mine & col(Flag.id).not_in(own)
    return mine


@dataclass(frozen=True)
class Pile:
    key: str          # text key of what the pile is
    count: int
    status: str       # the queue's status filter that lists it
    hint: str         # text key of what to do with it


def views(user: UserAccount) -> list[str]:
    """The queue's status filters of this user's piles (no counting: the queue's menu needs only their names)."""
    if _level_of(user) != workflow.Level.FINAL_REVIEW:
        return [MINE_KEY]
    return [MINE_KEY, f"{MINE_KEY}:{FlagStatus.FIRST_REVIEWED.value}", f"{MINE_KEY}:{FlagStatus.APPEALED.value}"]


def piles(db: Session, user: UserAccount) -> list[Pile]:
    """The landing page's counts, each with the queue view that lists exactly those flags."""
    from server.console.queue import FlagFilter, flag_query

    def count(status: str) -> int:
        stmt = flag_query(user, FlagFilter(status=status), db=db, columns=[col(Flag.id)])
        return int(db.exec(select(func.count()).select_from(stmt.subquery())).one())

    if user.role == Role.HOSPITAL_STAFF:
        return [Pile("pile_appealable", count(MINE_KEY), MINE_KEY, "pile_appealable_hint")]
    if _level_of(user) == workflow.Level.FIRST_REVIEW:
        return [Pile("pile_first_review", count(MINE_KEY), MINE_KEY, "pile_first_review_hint")]
    final, appeals = f"{MINE_KEY}:{FlagStatus.FIRST_REVIEWED.value}", f"{MINE_KEY}:{FlagStatus.APPEALED.value}"
    return [Pile("pile_final_review", count(final), final, "pile_final_review_hint"),
            Pile("pile_appeal_decision", count(appeals), appeals, "pile_appeal_decision_hint")]
