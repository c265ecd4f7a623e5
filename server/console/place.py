"""The place (实地) part of a flag page: the capture's scene frame beside the bed's reference, the place score
against its threshold, and the Wi-Fi and location cues, as sentences (no raw values).

Images are served by server/console/downloads.py behind the same scope check as the face crop: whoever may
not see the flag gets a 404 for its scene and reference too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.flags.tables import Flag
from server.hospitals.tables import Bed
from server.places.tables import BedReference, SceneEvidence

# Details a place flag records that this section shows in words; the generic detail table leaves them out.
PLACE_DETAILS = frozenset({"place_score", "place_threshold", "reference_id", "matched_bed_id", "wifi", "location",
                           "reason", "code", "reference_status"})


@dataclass
class PlaceView:
    score: int | None
    threshold: int | None
    reason: str                      # match | no_match | unapproved_reference | no_approved_reference |
    #                                  scene_unreadable | unchecked (no_reference: before references were approved)
    has_scene: bool
    has_reference: bool
    matched_other_bed: str | None    # label of another bed of the ward whose reference matched
    closest_other_bed: str | None = None  # another bed's reference came closest, short of the threshold
    cues: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (text key, format arguments)


def _result_id(db: Session, flag: Flag) -> int | None:
    result_id = flag.details.get("result_id")
    if result_id is None and flag.task_id:
        task = db.get(CheckTask, flag.task_id)
        result_id = task.result_id if task else None
    return int(result_id) if result_id else None


def _scene(db: Session, flag: Flag) -> SceneEvidence | None:
    result_id = _result_id(db, flag)
    return db.get(SceneEvidence, result_id) if result_id else None


def captured_scene(db: Session, flag: Flag) -> bytes | None:
    """The capture's scene key frame (faces blurred on the device), while retention keeps it."""
    scene = _scene(db, flag)
    return scene.scene_jpeg if scene else None


def _reference(db: Session, flag: Flag, scene: SceneEvidence | None) -> BedReference | None:
    """The flagged bed's own reference of the scene's source kind (what the capture should have shown),
    else the reference the check compared with."""
    task = db.get(CheckTask, flag.task_id) if flag.task_id else None
    if task is not None:
        query = select(BedReference).where(BedReference.bed_id == task.bed_id,
                                           BedReference.is_active == True)  # noqa: E712
        if scene is not None:
            query = query.where(BedReference.source == scene.source)
        own = db.exec(query.order_by(col(BedReference.id))).first()
        if own is not None:
            return own
    if scene is not None and scene.reference_id:
        return db.get(BedReference, scene.reference_id)
    return None


def bed_reference(db: Session, flag: Flag) -> bytes | None:
    reference = _reference(db, flag, _scene(db, flag))
    return reference.scene_jpeg if reference else None


def place_view(db: Session, flag: Flag, result: CheckResult | None) -> PlaceView | None:
    """The place section of a flag whose check carried a scene frame; None for the others."""
    scene = db.get(SceneEvidence, result.id) if result is not None else _scene(db, flag)
    if scene is None:
        return None
    details = scene.place_details or {}
    reason = str(details.get("reason") or ("unchecked" if scene.checked_at is None else "no_match"))
    task = db.get(CheckTask, flag.task_id) if flag.task_id else None
    other = None
    if scene.matched_bed_id and task is not None and scene.matched_bed_id != task.bed_id:
        bed = db.get(Bed, scene.matched_bed_id)
        other = bed.label if bed else None
    # The best-scoring reference is recorded even below the threshold: that bed "came closest", it did not
    # match, so the page never says both "matches no bed" and "matches bed 03".
    reached = (scene.place_score is not None and scene.place_threshold is not None
               and scene.place_score >= scene.place_threshold)
    view = PlaceView(score=scene.place_score, threshold=scene.place_threshold, reason=reason,
                     has_scene=scene.scene_jpeg is not None,
                     has_reference=_reference(db, flag, scene) is not None,
                     matched_other_bed=other if reached else None, closest_other_bed=None if reached else other)
    view.cues = cue_sentences(details)
    return view


def cue_sentences(details: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each device cue as a text key and its arguments; none alone decides, each is shown with its value."""
    out: list[tuple[str, dict[str, Any]]] = []
    wifi = details.get("wifi")
    if isinstance(wifi, dict):
        if not wifi.get("enrolled"):
            out.append(("place_wifi_not_enrolled", {"seen": wifi.get("seen", 0)}))
        elif not wifi.get("seen"):
            out.append(("place_wifi_none_seen", {"enrolled": wifi.get("enrolled", 0)}))
        else:
            out.append(("place_wifi_seen", {"seen": wifi.get("seen", 0), "known": wifi.get("known", 0),
                                             "enrolled": wifi.get("enrolled", 0)}))
    location = details.get("location")
    if isinstance(location, dict):
        if location.get("fence") is None and "distance_m" not in location:
            out.append(("place_location_no_fence", {}))
        else:
            key = "place_location_outside" if location.get("outside") else "place_location_inside"
            out.append((key, {"distance": _metres(location.get("distance_m")),
                              "accuracy": _metres(location.get("accuracy_m")),
                              "radius": _metres(location.get("radius_m")),
                              "source": "gps" if location.get("source") == "gps" else "network"}))
    return out


def _metres(value: Any) -> int:
    return round(float(value or 0))
