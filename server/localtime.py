"""The bureau's local time: days, months and quarters of reports and agreements are counted in it."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def local_date(at: datetime) -> date:
    return at.astimezone(LOCAL_TZ).date()


def day_start(day: date) -> datetime:
    """The UTC instant the local day begins."""
    return datetime.combine(day, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)


def days_between(start: datetime, end: datetime) -> int:
    """Inpatient days as hospitals bill them: local calendar days from start to end, at least one."""
    return max(1, (local_date(end) - local_date(start)).days)


def next_day(day: date) -> date:
    return day + timedelta(days=1)
