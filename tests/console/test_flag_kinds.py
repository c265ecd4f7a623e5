"""Every kind of flag, with the details its producer records, rendered for a supervisor and for the hospital, in
Chinese and in English: no text key (`detail_ward_id`), code word (`silent`), dict rendering, thousands
separator on an id, UTC time or Python value reaches the page, and earlier results link to their flag."""

from __future__ import annotations

import html
import re
from contextlib import closing
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from models.verdicts import FlagKind
from server.admissions.tables import Admission
from server.campaigns.tables import CheckTask
from server.db import utcnow
from server.devices.tables import Device
from server.flags import service as flag_service
from server.flags.tables import Flag
from tests.console.helpers import sign_in

# What a person must never read (the same list as tests/console/test_journeys.py's walk).
RAW = [
    (re.compile(r"\b(True|False|None)\b(?! [a-z])"), "a Python value"),  # not "False match by ..."
    (re.compile(r"[{\[]'|'[}\]]|': "), "dict or list syntax"),
    (re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b"), "an enum value or a text key"),
    (re.compile(r"\bUTC\b|\d{2}:\d{2}:\d{2}\.\d+|T\d{2}:\d{2}:\d{2}"), "a UTC or ISO time"),
    (re.compile(r"#\d{1,3}(?:,\d{3})+"), "an id with a thousands separator"),
]
# On a Chinese page an English word is a code that slipped through, except names the test itself gave.
ENGLISH_WORD = re.compile(r"\b[a-z]{4,}\b")
BUREAU_ONLY = {FlagKind.DUPLICATE_IDENTITY}  # about two insurance numbers, no hospital's to answer
GIVEN_NAMES = {"tablet", "staff", "sha256"}


def visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    # Hashes, nonces and insurance numbers are set in monospace: data, not words.
    page = re.sub(r'<(\w+)[^>]*class="[^"]*\bmono\b[^"]*"[^>]*>.*?</\1>', " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def raw_values(text: str, lang: str) -> list[str]:
    found = [f"{what}: {m.group(0)!r} in {text[max(0, m.start() - 40):m.end() + 20]!r}" for pattern, what in RAW
             for m in pattern.finditer(text)]
    if lang == "zh":
        found += [f"an English word: {m.group(0)!r} in {text[max(0, m.start() - 40):m.end() + 20]!r}"
                  for m in ENGLISH_WORD.finditer(text) if m.group(0) not in GIVEN_NAMES]
    return found


def _details_of_every_kind(db: Session, hospital_id: int, other_hospital_id: int,
                           flagged: list[int]) -> dict[str, tuple[dict, bool]]:
    """label (`kind` or `kind:variant`) -> (details as the producer records them, whether tied to a task)."""
    tasks = [db.get(Flag, i).task_id for i in flagged]  # type: ignore[union-attr]
    first, second = (db.get(CheckTask, t) for t in tasks)
    other = db.exec(select(CheckTask).where(CheckTask.hospital_id == other_hospital_id,
                                            col(CheckTask.result_id).is_not(None))).first()
    assert first is not None and second is not None and other is not None
    device = db.exec(select(Device).where(Device.hospital_id == hospital_id)).first()
    admissions = list(db.exec(select(Admission).where(Admission.hospital_id == hospital_id)))
    assert device is not None and device.id is not None and admissions
    now = utcnow()
    seen = (now - timedelta(hours=3)).isoformat()
    return {
        "spoof": ({"result_id": second.result_id, "distance": 0.31}, True),
        "unrecognised": ({}, True),
        "overdue": ({}, True),
        "late": ({"device_id": device.id, "late_results": 2, "task_ids": [first.id, 4845]}, False),
        "device_offline": ({"ward_id": first.ward_id, "reason": "silent", "device_ids": [device.id],
                            "last_seen_at": {str(device.id): seen}, "overdue": 3, "delivered": 1}, False),
        "device_offline:none": ({"ward_id": first.ward_id, "reason": "no_device", "device_ids": [],
                                 "last_seen_at": {}, "overdue": 2, "delivered": 0}, False),
        "duplicate_admission": ({"admission_ids": [admissions[0].id, 1234],
                                 "hospital_ids": [hospital_id, other_hospital_id],
                                 "admitted_at": [seen, now.isoformat()]}, False),
        "duplicate_admission:refused": ({"admission_ids": [1234], "hospital_ids": [other_hospital_id, hospital_id],
                                         "admitted_at": [seen], "refused_his_admission_no": "ZY20261207-01",
                                         "reason": "admitted_elsewhere"}, False),
        "tampered_evidence": ({"result_id": second.result_id, "device_id": device.id, "evidence_sha256": "ab" * 32,
                               "reason": "embedding_differs_from_crop", "distance": 0.8, "tolerance": 0.1}, True),
        "tampered_evidence:unreadable": ({"result_id": second.result_id, "device_id": device.id,
                                          "evidence_sha256": "cd" * 32, "reason": "crop_unreadable",
                                          "code": "image_corrupt"}, True),
        "replayed_photo": ({"reason": "same_image", "result_id": second.result_id,
                            "earlier_result_id": first.result_id, "earlier_task_id": first.id}, True),
        "replayed_photo:near": ({"reason": "near_identical_capture", "result_id": second.result_id, "distance": 0.02,
                                 "earlier_result_id": first.result_id, "earlier_task_id": first.id}, True),
        "replayed_photo:enrolled": ({"reason": "enrolled_photo_shown", "result_id": second.result_id,
                                     "distance": 0.05}, True),
        "cross_hospital_face": ({"result_id": second.result_id, "other_hospital_id": other_hospital_id,
                                 "other_result_id": other.result_id, "other_task_id": other.id, "distance": 0.2,
                                 "threshold": 0.35, "window_h": 24}, True),
        "ineligible": ({"reason": "coverage_ended", "insurance_status": "ended", "insured_from": "2020-01-01",
                        "insured_until": "2026-06-30", "admitted_on": "2026-12-01"}, False),
        "leave_overdue": ({"leave_id": 7, "leave_starts_at": seen, "leave_ends_at": now.isoformat(),
                           "returned_at": None, "overdue_s": 7260}, False),
        "leave_overnight": ({"leave_id": 8, "leave_starts_at": seen, "leave_ends_at": now.isoformat(),
                             "night": "22:00-06:00"}, False),
        "liveness_mismatch": ({"result_id": second.result_id, "device_id": device.id, "method": "challenge",
                               "reason": "key_frames_disagree", "asked": ["blink", "turn_left"],
                               "found": ["not_shown:blink"]}, True),
        "liveness_mismatch:none": ({"result_id": second.result_id, "device_id": device.id, "method": "none",
                                    "reason": "no_liveness_evidence"}, True),
        "liveness_mismatch:session": ({"result_id": second.result_id, "device_id": device.id, "method": "challenge",
                                       "reason": "session_fails", "asked": ["turn_left", "blink"],
                                       "found": ["before_prompt:turn_left", "not_done:blink", "session_cut",
                                                 "prompts_off_schedule"], "device_said_live": True}, True),
        "liveness_mismatch:method": ({"result_id": second.result_id, "device_id": device.id, "method": "motion",
                                      "reason": "liveness_method_not_allowed",
                                      "allowed": ["cannot_take_part", "challenge"]}, True),
        "identity_changed": ({"result_id": second.result_id, "device_id": device.id, "method": "challenge",
                              "reason": "another_face", "frames": [12, 31], "distances": [1.31, 1.28],
                              "threshold": 1.129, "frames_checked": 6}, True),
        "spoof:overruled": ({"reason": "liveness_rejudged", "overruled": "verified"}, True),
        "place_mismatch": ({"result_id": second.result_id, "device_id": device.id, "place_score": 0.04,
                            "place_threshold": 0.25, "reference_id": None, "matched_bed_id": None}, True),
        "place_mismatch:unapproved": ({"result_id": second.result_id, "device_id": device.id, "place_score": 48,
                                       "place_threshold": 20, "reference_id": None, "matched_bed_id": None,
                                       "reason": "unapproved_reference", "reference_status": "pending"}, True),
        "replayed_evidence": ({"reason": "repeated_sequence", "result_id": second.result_id,
                               "earlier_result_id": first.result_id, "earlier_task_id": first.id,
                               "reused": [{"part": "key_frame", "position": 0, "earlier_result_id": first.result_id,
                                           "earlier_task_id": first.id, "earlier_part": "key_frame", "distance": 0,
                                           "exact": True},
                                          {"part": "key_frame", "position": 1, "earlier_result_id": first.result_id,
                                           "earlier_task_id": first.id, "earlier_part": "key_frame", "distance": 6,
                                           "exact": False}]}, True),
        "replayed_evidence:scene": ({"reason": "repeated_scene", "result_id": second.result_id,
                                     "earlier_result_id": first.result_id, "earlier_task_id": first.id,
                                     "reused": [{"part": "scene", "position": 0, "earlier_result_id": first.result_id,
                                                 "earlier_task_id": first.id, "earlier_part": "scene", "distance": 0,
                                                 "exact": True}]}, True),
        "duplicate_identity": ({"insured_person_id": first.insured_person_id, "insurance_number": "110101199001",
                                "embedding_id": 21, "other_insured_person_id": second.insured_person_id,
                                "other_insurance_number": "110101199002", "other_embedding_id": 22,
                                "distance": 0.28, "threshold": 0.4}, False),
        "registry_mismatch": ({"his_insurance_status": "active", "registry_insurance_status": "ended",
                               "his_insured_until": "", "registry_insured_until": "2026-06-30"}, False),
        "face_replaced": ({"deactivated_embedding_ids": [11, 12], "new_embedding_id": 13,
                           "replace_reason": "照片模糊"}, False),
    }


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # rendering, not SQL: one engine is enough
def test_every_kind_of_flag_reads_in_words_in_both_languages(county, engine) -> None:
    server, world, flags = county
    h1, h2 = world.hospital_ids
    made: dict[str, int] = {}
    earlier_flag = flags[(h1, "absent")]  # the replay's earlier capture is the absent flag's
    with Session(engine) as db:
        every_kind = _details_of_every_kind(db, h1, h2, [earlier_flag, flags[(h1, "impersonated")]])
        for label, (details, with_task) in every_kind.items():
            task = db.get(CheckTask, db.get(Flag, flags[(h1, "impersonated")]).task_id) if with_task else None
            kind = FlagKind(label.partition(":")[0])
            flag = flag_service.raise_flag(db, kind=kind, details=details, task=task,
                                           hospital_id=None if kind in BUREAU_ONLY else h1)
            made[label] = flag.id or 0
        db.commit()
    # Every kind (absent and impersonated come from the fixture's spot check).
    assert {FlagKind(k.partition(":")[0]) for k in made} | {FlagKind.ABSENT, FlagKind.IMPERSONATED} == set(FlagKind)
    every = {**made, "absent": flags[(h1, "absent")], "impersonated": flags[(h1, "impersonated")]}
    problems: list[str] = []
    with closing(sign_in(server.url, "sup")) as sup, closing(sign_in(server.url, "staff1")) as staff:
        for who, client in (("sup", sup), ("staff1", staff)):
            for lang in ("zh", "en"):
                for label, flag_id in every.items():
                    if who == "staff1" and FlagKind(label.partition(":")[0]) in BUREAU_ONLY:
                        continue
                    page = client.get(f"/console/flags/{flag_id}", params={"lang": lang})
                    assert page.status_code == 200, (who, label, page.status_code)
                    problems += [f"{who} {lang} {label} #{flag_id}: {p}"
                                 for p in raw_values(visible_text(page.text), lang)]
        replay = sup.get(f"/console/flags/{made['replayed_photo']}").text
    assert not problems, "\n".join(problems)
    # The earlier capture of a replay is a link to the flag raised on it, not a bare number.
    assert f'href="/console/flags/{earlier_flag}"' in replay
    assert "4,845" not in replay
