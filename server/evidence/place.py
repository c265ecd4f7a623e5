"""The place check (实地): does a face capture's scene key frame show its bed's surroundings?

The scene is matched against the bed's own reference frames first (one match in the usual case), then,
for a hand-held tablet, against the other references of its ward (a nurse may frame the neighbouring
bed). A fixed bed camera must match its own bed: a camera moved to another bed, or swapped, is seen.
No reference reached `place_min_inliers`: a `place_mismatch` flag, with the score, the threshold, the
best reference and the Wi-Fi and location cues beside it, for a reviewer. Never silently verified.

Only references a bureau user approved count: one taken by a hospital's device waits (server/places). A bed
with no approved reference yet is a setup task (listed once on the console's reference page and dashboard),
not a flag on every capture: its captures are recorded `no_approved_reference`. But a scene that matches
only an unapproved reference of its bed is `place_mismatch` (`unapproved_reference`): the room its captures
are made in was planted by the hospital, and the bureau has not seen it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from models.errors import ImageError
from models.faces.decode import decode_image
from models.place.cues import distance_m, outside_geofence, wifi_cue
from models.place.features import SceneFeatures, extract_features
from models.place.match import PlaceMatch, match_scene
from models.settings import EngineSettings
from models.wire.place import SceneSource
from server.campaigns.tables import CheckTask
from server.checks import policy
from server.checks.tables import CheckResult
from server.db import utcnow
from server.places.service import scene_limits
from server.places.tables import BedReference, HospitalGeofence, SceneEvidence, WardFingerprint
from server.settings import ServerSettings


@dataclass
class PlaceOutcome:
    """What the check found for one result; written under the write gate, after the costly part."""

    scene: SceneEvidence
    score: int
    threshold: int
    reference_id: int | None
    matched_bed_id: int | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def mismatch(self) -> bool:
        reason = self.details.get("reason")
        if reason == "unapproved_reference":
            return True
        if reason == "no_approved_reference":  # a setup task of the bed, not a finding about this capture
            return False
        return policy.place_mismatch(self.score, self.threshold)

    def flag_details(self, result: CheckResult) -> dict[str, Any]:
        return {"result_id": result.id, "device_id": result.device_id, "place_score": self.score,
                "place_threshold": self.threshold, "reference_id": self.reference_id,
                "matched_bed_id": self.matched_bed_id, **self.details}

    def apply(self) -> SceneEvidence:
        scene = self.scene
        scene.place_score, scene.place_threshold = self.score, self.threshold
        scene.reference_id, scene.matched_bed_id = self.reference_id, self.matched_bed_id
        scene.place_details, scene.checked_at = self.details, utcnow()
        return scene


# Reference features kept per worker process, by reference id (a reference's frame never changes; a new
# frame is a new reference): ~40 KB each, so a county's 5,000 beds hold ~200 MB. A worker judging a ward's
# captures pays for each reference once, not once per capture (a tablet capture that misses its own bed is
# tried against up to `place_ward_max_references` of the ward's others; every roll-call meets them again).
REFERENCE_CACHE_SIZE = 5000


@dataclass
class PlaceChecker:
    settings: ServerSettings
    engine_settings: EngineSettings
    _reference_features: OrderedDict[int, SceneFeatures] = field(default_factory=OrderedDict, init=False)

    def check(self, db: Session, result: CheckResult, task: CheckTask) -> PlaceOutcome | None:
        """The place outcome of a result with a scene frame; None for results without one (no face)."""
        scene = db.get(SceneEvidence, result.id)
        if scene is None or scene.scene_jpeg is None:
            return None
        threshold = self.settings.place_min_inliers
        details = self._cues(db, scene, task)
        try:
            features = scene_features(scene.scene_jpeg, self._limits)
        except ImageError as e:
            return PlaceOutcome(scene, 0, threshold, None, None, {**details, "reason": "scene_unreadable",
                                                                   "code": e.code.value})
        own = self._references(db, task, scene.source, own_bed=True)
        if not own:
            return self._unapproved(db, task, scene, features, threshold, details)
        best = self._best(features, own, threshold)
        if (best is None or best[0] < threshold) and scene.source == SceneSource.TABLET:
            others = self._references(db, task, scene.source, own_bed=False)
            other = self._best(features, others, threshold)
            if other is not None and (best is None or other[0] > best[0]):
                best = other
        if best is None:
            return PlaceOutcome(scene, 0, threshold, None, None, {**details, "reason": "no_reference"})
        score, reference = best
        reason = "match" if score >= threshold else "no_match"
        return PlaceOutcome(scene, score, threshold, reference.id, reference.bed_id, {**details, "reason": reason})

    def _unapproved(self, db: Session, task: CheckTask, scene: SceneEvidence, features: SceneFeatures,
                    threshold: int, details: dict[str, Any]) -> PlaceOutcome:
        """A bed without an approved reference: flagged only when the scene matches one nobody approved."""
        waiting = list(db.exec(select(BedReference).where(BedReference.bed_id == task.bed_id,
                                                          BedReference.source == scene.source,
                                                          BedReference.is_active == False)  # noqa: E712
                               .order_by(col(BedReference.id))))
        best = self._best(features, waiting, threshold)
        if best is not None and best[0] >= threshold:
            score, reference = best
            return PlaceOutcome(scene, score, threshold, reference.id, reference.bed_id,
                                {**details, "reason": "unapproved_reference",
                                 "reference_status": reference.status.value})
        return PlaceOutcome(scene, best[0] if best else 0, threshold, None, None,
                            {**details, "reason": "no_approved_reference"})

    @property
    def _limits(self) -> EngineSettings:
        return scene_limits(self.settings, self.engine_settings)

    def _references(self, db: Session, task: CheckTask, source: SceneSource, *, own_bed: bool) -> list[BedReference]:
        query = select(BedReference).where(BedReference.ward_id == task.ward_id, BedReference.source == source,
                                           BedReference.is_active == True)  # noqa: E712
        if own_bed:
            return list(db.exec(query.where(BedReference.bed_id == task.bed_id).order_by(col(BedReference.id))))
        return list(db.exec(query.where(BedReference.bed_id != task.bed_id).order_by(col(BedReference.id))
                            .limit(self.settings.place_ward_max_references)))

    def _best(self, scene: SceneFeatures, references: list[BedReference],
              threshold: int) -> tuple[int, BedReference] | None:
        if not references:
            return None
        # Stops at a clear match, not at the threshold: the ward's identical beds can reach it by chance,
        # and the reviewer should see the bed the scene really shows.
        found = match_scene(scene, [self.reference_features(r) for r in references], enough=2 * threshold)
        return found.score, references[found.reference_index]

    def reference_features(self, reference: BedReference) -> SceneFeatures:
        """A reference's features, computed once per worker process (LRU of `REFERENCE_CACHE_SIZE`)."""
        key = reference.id or 0
        found = self._reference_features.get(key)
        if found is not None:
            self._reference_features.move_to_end(key)
            return found
        found = scene_features(reference.scene_jpeg, self._limits)
        if key:
            self._reference_features[key] = found
            if len(self._reference_features) > REFERENCE_CACHE_SIZE:
                self._reference_features.popitem(last=False)
        return found

    def _cues(self, db: Session, scene: SceneEvidence, task: CheckTask) -> dict[str, Any]:
        """The device's Wi-Fi and location cues against the ward's fingerprint and the hospital's fence."""
        out: dict[str, Any] = {}
        reported = scene.cues or {}
        fingerprint = db.get(WardFingerprint, task.ward_id)
        if reported.get("wifi_bssids") or fingerprint is not None:
            wifi = wifi_cue(reported.get("wifi_bssids") or [], fingerprint.wifi_bssids if fingerprint else [])
            out["wifi"] = {"seen": wifi.seen, "known": wifi.known, "enrolled": wifi.enrolled,
                           "overlap": None if wifi.overlap is None else round(wifi.overlap, 3)}
        fix, fence = reported.get("location"), db.get(HospitalGeofence, task.hospital_id)
        if fix and fence is not None:
            distance = distance_m(fix["lat"], fix["lon"], fence.lat, fence.lon)
            out["location"] = {"distance_m": round(distance), "accuracy_m": fix.get("accuracy_m"),
                               "radius_m": fence.radius_m, "source": fix.get("source"),
                               "outside": outside_geofence(distance, float(fix.get("accuracy_m") or 0.0),
                                                           fence.radius_m)}
        elif fix:
            out["location"] = {"reported": True, "fence": None}
        return out


def scene_features(jpeg: bytes, limits: EngineSettings) -> SceneFeatures:
    """Features of a stored frame, an uploaded scene or a reference."""
    return extract_features(decode_image(jpeg, limits))


def best_reference(scene: SceneFeatures, reference_jpegs: list[bytes], limits: EngineSettings,
                   threshold: int) -> PlaceMatch:
    """The costly part of a place check (timed per capture by scripts/bench_server.py --place)."""
    # Reference features are recomputed (a few ms) rather than stored: see BedReference.
    features = [scene_features(jpeg, limits) for jpeg in reference_jpegs]
    # Stops at a clear match, not at the threshold: the ward's identical beds can reach it by chance,
    # and the reviewer should see the bed the scene really shows.
    return match_scene(scene, features, enough=2 * threshold)


def drop_scene(outcome: PlaceOutcome | None) -> None:
    """The scene frame goes with the crop of a verified check whose evidence passed (privacy)."""
    if outcome is not None:
        outcome.scene.scene_jpeg = None
