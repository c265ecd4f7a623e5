"""How values look to a person: local time in the bureau's zone, numbers, yes/no, liveness and distance in words.

Pages and exports call these and never print a raw Python value (`True`, a dict, an enum word). Dates and
numbers are formatted by babel in the page's language; storage stays UTC.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_timedelta, get_timezone_gmt
from babel.numbers import format_decimal, format_percent

from server.funds.money import format_yuan

LOCALES = {"zh": "zh_CN", "en": "en_GB"}
BEIJING_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC"})
DASH = "—"
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")  # a stored timestamp, shown as local time
CODE_WITH_SUBJECT = re.compile(r"^[a-z_]+:[a-z_]+$")  # a reason and what it is about, e.g. not_shown:blink


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def as_local(value: datetime, tz: str) -> datetime:
    """An aware local datetime; naive values are UTC (SQLite returns them so)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(zone(tz))


def excel_local(value: datetime | None, tz: str) -> datetime | None:
    """A naive local datetime, which openpyxl writes as a real Excel date (Excel has no time zones)."""
    return as_local(value, tz).replace(tzinfo=None) if value else None


@dataclass(frozen=True)
class Formatter:
    """Formatting for one page: its language, its time zone and its translator."""

    lang: str
    tz: str
    t: Callable[[str], str]

    @property
    def locale(self) -> str:
        return LOCALES.get(self.lang, "zh_CN")

    def time(self, value: datetime | None, pattern: str = "yyyy-MM-dd HH:mm:ss") -> str:
        if value is None:
            return DASH
        return format_datetime(as_local(value, self.tz), pattern, locale=self.locale)

    def short_time(self, value: datetime | None) -> str:
        return self.time(value, "MM-dd HH:mm")

    def wait(self, seconds: float) -> str:
        """A wait in words, rounded up: `15分钟`, `8秒` (a wait shown shorter than it is would be refused)."""
        unit = "second" if seconds < 90 else "minute"
        step = 1 if unit == "second" else 60
        rounded = -(-math.ceil(seconds) // step) * step
        return format_timedelta(timedelta(seconds=rounded), granularity=unit, threshold=10_000,
                                locale=self.locale)

    def zone_label(self) -> str:
        """The zone as people read it: `北京时间 (GMT+08:00)`; a zone without a common name by its tz name."""
        name = self.t("beijing_time") if self.tz in BEIJING_ZONES else self.tz
        return f"{name} ({get_timezone_gmt(datetime.now(zone(self.tz)), locale=self.locale)})"

    def number(self, value: float | None, digits: int = 3) -> str:
        if value is None:
            return DASH
        return format_decimal(value, format=f"#,##0.{'0' * digits}" if digits else "#,##0", locale=self.locale)

    def percent(self, value: float | None, digits: int = 1) -> str:
        if value is None:
            return DASH
        return format_percent(value, format=f"#,##0.{'0' * digits}%", locale=self.locale)

    def yuan(self, fen: int | None) -> str:
        return format_yuan(fen)

    def yes_no(self, value: bool | None) -> str:
        return DASH if value is None else self.t("yes" if value else "no")

    def value(self, value: Any) -> str:
        """Any stored detail as words: booleans, numbers, lists, nested records; keys and codes translated."""
        if value is None or value == "":
            return DASH
        if isinstance(value, bool):
            return self.yes_no(value)
        if isinstance(value, float):
            return self.number(value)
        if isinstance(value, int):
            return format_decimal(value, locale=self.locale)
        if isinstance(value, datetime):
            return self.time(value)
        if isinstance(value, Mapping):
            return "；".join(f"{self.t(str(k))} {self.value(v)}" for k, v in value.items())
        if isinstance(value, list | tuple | set):
            return "、".join(self.value(v) for v in value) if value else DASH
        if isinstance(value, str) and ISO_TIME.match(value):
            try:
                return self.time(datetime.fromisoformat(value))
            except ValueError:
                return value
        if isinstance(value, str) and CODE_WITH_SUBJECT.match(value):
            return self.code(value)
        return self.t(str(value))

    def code(self, value: str, prefix: str = "") -> str:
        """A stored reason code in words; `not_done:blink` is a reason with its subject (an action, ...)."""
        head, _, subject = value.partition(":")
        words = self.t(prefix + head)
        if not subject:
            return words
        return f"{words}（{self.t(subject)}）" if self.lang == "zh" else f"{words} ({self.t(subject)})"

    def face_frames(self, frames: list[Mapping[str, Any]] | None) -> str:
        """`合并 3 帧比对：人脸截图 0.71、正脸 0.68、眨眼 0.74；未用：向画面左侧转头（质量不合格）`."""
        if not frames:
            return DASH
        sep = "、" if self.lang == "zh" else ", "
        used = [f"{self._frame_role(f)} {self.number(f['distance'])}" for f in frames if f.get("used")]
        unused = [f"{self._frame_role(f)}{self._paren(self.t('frame_' + str(f.get('reason'))))}"
                  for f in frames if not f.get("used")]
        text = self.t("frames_fused").format(count=len(used)) + sep.join(used)
        if unused:
            text += ("；" if self.lang == "zh" else "; ") + self.t("frames_unused") + sep.join(unused)
        return text

    def _frame_role(self, frame: Mapping[str, Any]) -> str:
        role = str(frame.get("role"))
        return self.t("frame_" + role) if role in ("crop", "motion") else self.t(role)

    def _paren(self, words: str) -> str:
        return f"（{words}）" if self.lang == "zh" else f" ({words})"

    def liveness(self, report: Mapping[str, Any] | None) -> str:
        """`活体通过 · 方式 动作指令 · 动作 眨眼 完成于 1.2 秒 …`, every code translated."""
        if not report:
            return DASH
        parts = [self.t("live_passed" if report.get("is_live") else "live_failed")]
        method = report.get("method")
        if method and method != "none":
            parts.append(f"{self.t('live_method')} {self.t(str(method))}")
        for key in ("score", "passive_score"):
            if report.get(key) is not None:
                parts.append(f"{self.t('live_' + key)} {self.number(float(report[key]), 2)}")
        actions = [self._action(a) for a in report.get("actions") or []]
        if actions:
            parts.append(f"{self.t('live_actions')} {'、'.join(actions)}")
        elif report.get("blink_detected") is not None and not method:
            parts.append(f"{self.t('live_blink')} {self.yes_no(bool(report['blink_detected']))}")
        if report.get("planarity"):
            test = [self.t(f"planarity_{report['planarity']}")]
            for key in ("depth", "residual"):
                if report.get(key) is not None:
                    test.append(f"{self.t('live_3d_' + key)} {self.number(float(report[key]), 3)}")
            parts.append(f"{self.t('live_3d')} {('，' if self.lang == 'zh' else ', ').join(test)}")
        if report.get("motion") is not None:
            parts.append(f"{self.t('live_motion')} {self.number(float(report['motion']), 2)}")
        reasons = [self.code(str(r), "live_reason_") for r in report.get("reasons") or []]
        if reasons:
            parts.append(f"{self.t('live_reasons')} {'、'.join(reasons)}")
        return " · ".join(parts)

    def _action(self, action: Mapping[str, Any]) -> str:
        done = action.get("passed") and action.get("time_s") is not None
        state = (self.t("live_action_done").format(time=self.number(float(action["time_s"]), 1)) if done
                 else self.t("live_action_not_done"))
        return f"{self.t(str(action.get('action')))} {state}"

    def distance_note(self, distance: float | None, threshold: float | None) -> str:
        """The distance read against the threshold: lower means more alike; at or under it is the same person."""
        if distance is None or threshold is None:
            return ""
        key = "distance_same" if distance <= threshold else "distance_different"
        return self.t(key).format(threshold=self.number(threshold), margin=self.number(abs(distance - threshold)))
