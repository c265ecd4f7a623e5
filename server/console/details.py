"""A flag's recorded details as rows a person reads: a label in words, values in words, ids as `#123` (never
with a thousands separator), a result or task linked to the flag raised on it, wards and devices by name.

server/console/service.detail_items chooses which details a reader sees (and turns hospital ids into names);
this module only says how each one reads. A key without a rule here reads through Formatter.value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from server.accounts.tables import Role, UserAccount
from server.checks.tables import CheckResult
from server.console.format import Formatter
from server.devices.tables import Device
from server.flags.tables import Flag
from server.hospitals.tables import Ward

Part = tuple[str, str | None]  # a piece of text and the console path it links to (None: plain)


@dataclass(frozen=True)
class DetailRow:
    key: str
    label: str
    parts: list[Part]


def ident(value: Any) -> str:
    """An id as people copy it: `#4845`, never `4,845`."""
    return f"#{value}"


def _ids(value: Any) -> list[Any]:
    return [v for v in (value if isinstance(value, list | tuple) else [value]) if v is not None]


class _Reader:
    def __init__(self, db: Session, user: UserAccount, fmt: Formatter, prefix: str) -> None:
        self.db, self.user, self.fmt, self.prefix = db, user, fmt, prefix

    def flags_on_tasks(self, task_ids: Iterable[int]) -> dict[int, int]:
        """task id -> the id of a flag raised on it that this reader may open."""
        from server.flags import service as flag_service

        ids = [int(i) for i in task_ids]
        if not ids:
            return {}
        stmt = flag_service.scoped(select(Flag.task_id, Flag.id).where(col(Flag.task_id).in_(ids)), self.user)
        found: dict[int, int] = {}
        for task_id, flag_id in self.db.exec(stmt.order_by(col(Flag.id))):
            found.setdefault(int(task_id), int(flag_id))
        return found

    def tasks(self, value: Any) -> list[Part]:
        ids = [int(i) for i in _ids(value)]
        flags = self.flags_on_tasks(ids)
        return [(self.fmt.t("task_n").format(n=ident(i)), f"{self.prefix}/flags/{flags[i]}" if i in flags else None)
                for i in ids]

    def results(self, value: Any) -> list[Part]:
        ids = [int(i) for i in _ids(value)]
        rows = self.db.exec(select(CheckResult.id, CheckResult.task_id).where(col(CheckResult.id).in_(ids)))
        task_of = {int(r): int(t) for r, t in rows}
        flags = self.flags_on_tasks(task_of.values())
        parts: list[Part] = []
        for i in ids:
            flag_id = flags.get(task_of.get(i, -1))
            text = self.fmt.t("result_n").format(n=ident(i))
            if flag_id is not None:
                text += self.fmt.t("result_flag_n").format(n=ident(flag_id))
            parts.append((text, f"{self.prefix}/flags/{flag_id}" if flag_id is not None else None))
        return parts

    def ward(self, value: Any) -> list[Part]:
        ward = self.db.get(Ward, int(value)) if value is not None else None
        return [(ward.name or ward.code if ward else ident(value), None)]

    def devices(self, value: Any) -> list[Part]:
        return [(self._device_name(int(i)), None) for i in _ids(value)] or [(self.fmt.t("no_device_in_ward"), None)]

    def _device_name(self, device_id: int) -> str:
        device = self.db.get(Device, device_id)
        return f"{ident(device_id)} {device.name}".strip() if device else ident(device_id)

    def last_seen(self, value: Any) -> list[Part]:
        """{device id: ISO time or None} -> `#9 平板：2026-12-08 09:40:35`."""
        if not isinstance(value, dict) or not value:
            return [(self.fmt.value(None), None)]
        sep = "：" if self.fmt.lang == "zh" else ": "
        return [(f"{self._device_name(int(k))}{sep}{self.fmt.value(v) if v else self.fmt.t('never')}", None)
                for k, v in value.items()]

    def plain_ids(self, value: Any) -> list[Part]:
        return [(ident(i), None) for i in _ids(value)]

    def person(self, value: Any) -> list[Part]:
        if self.user.role == Role.HOSPITAL_STAFF:
            return [(ident(value), None)]
        return [(ident(value), f"{self.prefix}/persons/{value}")]

    def reason(self, value: Any) -> list[Part]:
        """A reason code: its flag-detail wording when the bare word would be ambiguous (`silent`)."""
        key = f"detail_reason_{value}"
        text = self.fmt.t(key)
        return [(text if text != key else self.fmt.value(value), None)]

    def seconds(self, value: Any) -> list[Part]:
        if isinstance(value, int | float):
            return [(self.fmt.wait(float(value)), None)]
        return [(self.fmt.value(value), None)]

    def verdict(self, value: Any) -> list[Part]:
        return [(self.fmt.t(str(value)), None)]


RULES: dict[str, Callable[[_Reader, Any], list[Part]]] = {
    "ward_id": _Reader.ward, "device_ids": _Reader.devices, "last_seen_at": _Reader.last_seen,
    "task_ids": _Reader.tasks, "earlier_task_id": _Reader.tasks, "other_task_id": _Reader.tasks,
    "earlier_result_id": _Reader.results, "other_result_id": _Reader.results,
    "superseded_by_result_id": _Reader.results,
    "admission_ids": _Reader.plain_ids, "deactivated_embedding_ids": _Reader.plain_ids,
    "new_embedding_id": _Reader.plain_ids, "active_embedding_ids": _Reader.plain_ids,
    "reference_id": _Reader.plain_ids, "matched_bed_id": _Reader.plain_ids,
    "other_insured_person_id": _Reader.person, "reason": _Reader.reason, "overdue_s": _Reader.seconds,
    "late_verdict": _Reader.verdict,
}


def rows(db: Session, user: UserAccount, fmt: Formatter, items: list[tuple[str, Any]],
         prefix: str = "/console") -> list[DetailRow]:
    reader = _Reader(db, user, fmt, prefix)
    out = []
    for key, value in items:
        rule = RULES.get(key)
        if rule is not None:
            parts = rule(reader, value)
        elif key.endswith(("_id", "_ids")) and all(isinstance(v, int) for v in _ids(value)):
            parts = reader.plain_ids(value)  # any other id: `#n`, no separator
        else:
            parts = [(fmt.value(value), None)]
        out.append(DetailRow(key, fmt.t(f"detail_{key}"), parts))
    return out
