"""The 1:N face index: faiss HNSW over the active enrolled embeddings, keyed by `face_embedding.id`.

The database stays the truth. The index only proposes candidates (search results are re-checked against
the DB, so a deactivated row left in the graph costs a slot, never a wrong flag), and it can always be
rebuilt from the DB. It is persisted as one file (a JSON header + the faiss bytes) written to a temporary
file and moved into place with `os.replace`, so a crash leaves the old file or the new one, never half.

On load the file's fingerprint (count, largest id, sum of ids of the rows it holds) is compared with the DB:
rows added since are caught up incrementally; anything else (rows deactivated or deleted) rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from server.persons.service import EMBEDDING_DTYPE
from server.persons.tables import FaceEmbedding

log = logging.getLogger("bedcheck.enrollment.index")

DIM = 128
FORMAT_VERSION = 1
_MAGIC = b"BCFX"
_BATCH_ROWS = 50_000


@dataclass(frozen=True)
class IndexParams:
    """HNSW settings, measured by scripts/bench_enrollment.py on dlib-shaped vectors (one core): recall@1
    0.998 at 100k, 0.979 at 1.5M with efSearch 1024 (p50 ~10 ms). A desk search costs far less than the
    photo's encoding (~0.24 s), so efSearch is set high; efConstruction is the next knob for recall at 1.5M."""

    m: int = 32
    ef_construction: int = 40
    ef_search: int = 1024


@dataclass(frozen=True)
class Fingerprint:
    """What a set of embedding rows is: enough to tell "same", "only rows added" and "changed" apart."""

    count: int = 0
    max_id: int = 0
    id_sum: int = 0


class FaceIndex:
    """An in-memory ANN index of enrolled faces; `search` gives (embedding id, Euclidean distance) pairs."""

    def __init__(self, params: IndexParams | None = None, *, index: faiss.Index | None = None,
                 fingerprint: Fingerprint | None = None, database: str = "") -> None:
        self.params = params or IndexParams()
        self.database = database  # which database the rows came from (a URL digest, no password)
        if index is None:
            hnsw = faiss.IndexHNSWFlat(DIM, self.params.m)
            hnsw.hnsw.efConstruction = self.params.ef_construction
            index = faiss.IndexIDMap2(hnsw)
        self._index = index
        self.set_ef_search(self.params.ef_search)
        self.fingerprint = fingerprint or Fingerprint()
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Adds embeddings under their row ids (ids must be new and larger than any held)."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        with self.lock:
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, DIM), ids)
            fp = self.fingerprint
            self.fingerprint = Fingerprint(fp.count + len(ids), max(fp.max_id, int(ids.max())),
                                           fp.id_sum + int(ids.sum()))

    def add_one(self, embedding_id: int, vector: np.ndarray) -> None:
        self.add(np.array([embedding_id], dtype=np.int64), np.asarray(vector).reshape(1, DIM))

    def search(self, vector: np.ndarray, k: int = 8) -> list[tuple[int, float]]:
        """The `k` nearest enrolled embeddings: (embedding id, Euclidean distance), nearest first."""
        if len(self) == 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, DIM)
        with self.lock:
            squared, ids = self._index.search(query, min(k, len(self)))
        return [(int(i), float(np.sqrt(max(d, 0.0)))) for d, i in zip(squared[0], ids[0], strict=True) if i >= 0]

    def save(self, path: Path) -> None:
        """Writes the index atomically (temporary file, fsync, `os.replace`)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            header = json.dumps({"version": FORMAT_VERSION, "params": asdict(self.params), "database": self.database,
                                 "fingerprint": asdict(self.fingerprint)}).encode()
            payload = faiss.serialize_index(self._index)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as out:
            out.write(_MAGIC + struct.pack("<I", len(header)) + header)
            out.write(memoryview(payload))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> FaceIndex:
        """Reads a file written by `save`; raises ValueError when it is not one."""
        data = path.read_bytes()
        if data[:4] != _MAGIC:
            raise ValueError("not a bedcheck face index file")
        (length,) = struct.unpack("<I", data[4:8])
        header = json.loads(data[8:8 + length])
        if header.get("version") != FORMAT_VERSION:
            raise ValueError("face index file of another format version")
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8, offset=8 + length))
        return cls(IndexParams(**header["params"]), index=index, fingerprint=Fingerprint(**header["fingerprint"]),
                   database=str(header.get("database", "")))

    def set_ef_search(self, ef: int) -> None:
        """Candidates HNSW keeps while searching: higher is slower and closer to exact."""
        inner = faiss.downcast_index(self._index.index) if hasattr(self._index, "index") else self._index
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = ef


# --- the database side -----------------------------------------------------------------------------------
def _enrolled() -> list:
    return [col(FaceEmbedding.insured_person_id).is_not(None), FaceEmbedding.is_active == True]  # noqa: E712


def db_fingerprint(db: Session, *, up_to_id: int | None = None) -> Fingerprint:
    """Fingerprint of the active insured-person embeddings (optionally only rows with id <= `up_to_id`)."""
    where = _enrolled()
    if up_to_id is not None:
        where.append(col(FaceEmbedding.id) <= up_to_id)
    count, max_id, id_sum = db.exec(
        select(func.count(col(FaceEmbedding.id)), func.max(FaceEmbedding.id), func.sum(FaceEmbedding.id)).where(*where)
    ).one()
    return Fingerprint(int(count or 0), int(max_id or 0), int(id_sum or 0))


def iter_enrolled(db: Session, *, after_id: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Active insured-person embeddings with id > `after_id`, in id order, as (ids, vectors) batches."""
    last = after_id
    while True:
        rows = db.exec(select(FaceEmbedding.id, FaceEmbedding.vector)
                       .where(*_enrolled(), col(FaceEmbedding.id) > last)
                       .order_by(col(FaceEmbedding.id)).limit(_BATCH_ROWS)).all()
        if not rows:
            return
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=EMBEDDING_DTYPE).reshape(-1, DIM)
        yield ids, vectors
        last = int(ids[-1])


def database_identity(db: Session) -> str:
    """A digest of the database URL without its password: an index file built elsewhere is not reused."""
    url = db.get_bind().engine.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def build_from_db(db: Session, params: IndexParams | None = None) -> FaceIndex:
    """A new index of every active enrolled embedding."""
    index = FaceIndex(params, database=database_identity(db))
    catch_up(db, index)
    return index


def catch_up(db: Session, index: FaceIndex) -> int:
    """Adds rows enrolled since the index was last in step with the DB; returns how many."""
    added = 0
    for ids, vectors in iter_enrolled(db, after_id=index.fingerprint.max_id):
        index.add(ids, vectors)
        added += len(ids)
    return added


def load_or_rebuild(db: Session, path: Path, params: IndexParams | None = None) -> tuple[FaceIndex, str]:
    """The index at `path` brought in step with the DB, or rebuilt; saved when it changed.

    Returns the index and what happened: "loaded", "caught_up", "rebuilt_missing", "rebuilt_stale".
    """
    params = params or IndexParams()
    index: FaceIndex | None = None
    outcome = "rebuilt_missing"
    if path.is_file():
        try:
            index = FaceIndex.read(path)
        except (ValueError, RuntimeError, OSError, KeyError, TypeError):
            log.warning("face index file unreadable, rebuilding: %s", path)
        else:
            built_alike = (index.params.m, index.params.ef_construction) == (params.m, params.ef_construction)
            if (not built_alike or index.database != database_identity(db)
                    or db_fingerprint(db, up_to_id=index.fingerprint.max_id) != index.fingerprint):
                index, outcome = None, "rebuilt_stale"
    if index is None:
        index = build_from_db(db, params)
        index.save(path)
        log.info("face index %s: %d embeddings", outcome, len(index))
        return index, outcome
    index.params = params  # efSearch is a query-time knob: a file saved with another one is still good
    index.set_ef_search(params.ef_search)
    added = catch_up(db, index)
    if added:
        index.save(path)
        return index, "caught_up"
    return index, "loaded"
