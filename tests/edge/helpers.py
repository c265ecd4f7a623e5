"""Small builders for the edge unit tests (no server, no faces)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from models.verdicts import Verdict
from models.wire import BedRoster, ResultAck, TaskRead, WardRoster


def task(task_id: int = 1, bed_label: str = "01", bed_id: int = 11) -> TaskRead:
    now = datetime.now(UTC)
    return TaskRead(task_id=task_id, campaign_id=1, nonce=f"nonce-{task_id:08d}", admission_id=task_id,
                    insured_person_id=100 + task_id, bed_id=bed_id, bed_label=bed_label, ward_id=1,
                    deadline_at=now + timedelta(minutes=20), issued_at=now)


def roster(*tasks: TaskRead) -> WardRoster:
    return WardRoster(hospital_id=1, ward_id=1, ward_name="W1", server_time=datetime.now(UTC),
                      beds=[BedRoster(bed_id=t.bed_id, bed_label=t.bed_label, admission_id=t.admission_id,
                                      insured_person_id=t.insured_person_id, display_name="张*") for t in tasks])


def ack(task_id: int, duplicate: bool = False) -> dict:
    return ResultAck(task_id=task_id, verdict=Verdict.ABSENT, duplicate=duplicate,
                     server_time=datetime.now(UTC)).model_dump(mode="json")
