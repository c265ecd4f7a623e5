"""The 1:N index: exact enough against brute force, persisted atomically, rebuilt from the DB when missing or
stale, caught up when rows were only added. Synthetic vectors: no real faces needed."""

from __future__ import annotations

import numpy as np
from sqlmodel import Session, select

from enrollment.synthetic import SyntheticFaces
from server.persons.face_index import FORMAT_VERSION, FaceIndex, IndexParams, db_fingerprint, load_or_rebuild
from server.persons.service import add_embedding, get_or_create_person
from server.persons.tables import FaceEmbedding


def _enroll(db: Session, vectors: np.ndarray, start: int = 0) -> list[int]:
    ids = []
    for i, vector in enumerate(vectors, start=start):
        person, _ = get_or_create_person(db, insurance_number=f"N{i}", name=f"P{i}")
        ids.append(add_embedding(db, person_id=person.id or 0, vector=vector, source="test", engine_version="t").id)
    db.commit()
    return ids


def test_recall_at_1_against_exact_search_on_face_shaped_vectors() -> None:
    faces = SyntheticFaces(3)
    centres = faces.identities(5000)
    gallery, probes = faces.photos_of(centres), faces.photos_of(centres[:300])
    index = FaceIndex(IndexParams(exact_below=1000))  # the quantised path, as a county-sized gallery uses
    index.add(np.arange(1, 5001), gallery)
    assert not index.exact
    exact = np.argmin(((probes[:, None, :] - gallery[None, :, :]) ** 2).sum(axis=2), axis=1) + 1
    found = np.array([index.search(p, k=1)[0][0] for p in probes])
    assert (found == exact).mean() >= 0.99
    eid, distance = index.search(probes[0], k=1)[0]
    assert abs(distance - np.linalg.norm(gallery[eid - 1] - probes[0])) < 1e-4  # Euclidean, not squared


def test_saved_index_reads_back_identically_and_replaces_the_file_atomically(tmp_path) -> None:
    vectors = SyntheticFaces(1).identities(200)
    index = FaceIndex()
    index.add(np.arange(10, 210), vectors)
    path = tmp_path / "faces.index"
    index.save(path)
    path_before = path.stat().st_ino
    index.save(path)
    assert path.stat().st_ino != path_before  # a new file moved into place, never rewritten in place
    assert not list(tmp_path.glob(".*tmp"))
    again = FaceIndex.read(path)
    assert len(again) == 200 and again.fingerprint == index.fingerprint
    assert again.search(vectors[5], k=1)[0][0] == 15


def test_index_is_rebuilt_when_missing_caught_up_when_rows_were_added_and_rebuilt_when_stale(db, tmp_path) -> None:
    faces = SyntheticFaces(2)
    vectors = faces.identities(60)
    ids = _enroll(db, vectors[:40])
    path = tmp_path / "faces.index"

    index, how = load_or_rebuild(db, path)
    assert how == "rebuilt_missing" and len(index) == 40 and path.is_file()
    assert load_or_rebuild(db, path)[1] == "loaded"

    _enroll(db, vectors[40:], start=40)  # another process enrolled more: the file lags behind the DB
    index, how = load_or_rebuild(db, path)
    assert how == "caught_up" and len(index) == 60
    assert index.fingerprint == db_fingerprint(db)

    row = db.get(FaceEmbedding, ids[3])
    row.is_active = False  # re-enrollment deactivated a face: the index still holds it
    db.add(row)
    db.commit()
    index, how = load_or_rebuild(db, path)
    assert how == "rebuilt_stale" and len(index) == 59
    assert ids[3] not in [eid for eid, _ in index.search(vectors[3], k=5)]


def test_unreadable_or_foreign_index_file_is_rebuilt_from_the_database(db, tmp_path) -> None:
    _enroll(db, SyntheticFaces(4).identities(10))
    path = tmp_path / "faces.index"
    path.write_bytes(b"half-written garbage")
    assert load_or_rebuild(db, path)[1] == "rebuilt_missing"
    assert len(FaceIndex.read(path)) == 10

    foreign = FaceIndex(database="another-database")
    foreign.add(np.arange(1, 11), SyntheticFaces(5).identities(10))  # same ids, other faces
    foreign.fingerprint = db_fingerprint(db)
    foreign.save(path)
    index, how = load_or_rebuild(db, path)
    assert how == "rebuilt_stale"
    stored = db.exec(select(FaceEmbedding.vector).where(FaceEmbedding.id == 1)).one()
    assert index.search(np.frombuffer(stored, dtype="<f4"), k=1) == [(1, 0.0)]


def test_gallery_outgrowing_the_flat_scan_is_quantised_in_place_and_keeps_every_row() -> None:
    faces = SyntheticFaces(6)
    centres = faces.identities(900)
    gallery = faces.photos_of(centres)
    index = FaceIndex(IndexParams(exact_below=500))
    for start in range(0, 900, 200):  # catch_up adds batches: the threshold is crossed mid-way
        index.add(np.arange(start + 1, start + 201)[: len(gallery[start:start + 200])], gallery[start:start + 200])
        assert index.exact == (start + 200 < 500)
    assert len(index) == 900 and index.fingerprint.count == 900
    assert all(index.search(gallery[i], k=1)[0] == (i + 1, 0.0) for i in range(0, 900, 37))
    wide = index.search(gallery[0], k=900)  # deeper than k_factor allows: every row still comes back once
    assert sorted(eid for eid, _ in wide) == list(range(1, 901))


def test_index_file_of_the_former_format_is_rebuilt(db, tmp_path) -> None:
    _enroll(db, SyntheticFaces(7).identities(5))
    path = tmp_path / "faces.index"
    load_or_rebuild(db, path)
    data = bytearray(path.read_bytes())
    header_length = int.from_bytes(data[4:8], "little")
    old, new = f'"version": {FORMAT_VERSION}'.encode(), f'"version": {FORMAT_VERSION - 1}'.encode()
    data[8:8 + header_length] = data[8:8 + header_length].replace(old, new)
    path.write_bytes(bytes(data))
    assert load_or_rebuild(db, path)[1] == "rebuilt_missing"
    assert load_or_rebuild(db, path)[1] == "loaded"
