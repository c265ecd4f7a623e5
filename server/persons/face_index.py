"""The 1:N face index over the active enrolled embeddings, keyed by `face_embedding.id`.

Small galleries are searched exactly (faiss flat L2). From `IndexParams.exact_below` rows up, every
embedding is held twice: as a 4-bit product-quantised code scanned in full with SIMD (faiss "fast scan",
32 bytes a face) and as the float32 vector, with which the best `k_factor` candidates are re-ranked
exactly. The scan's cost is the same for every query (no graph or cell walk that some queries take long),
and the re-ranking gives exact distances. Why not HNSW or IVF: dlib-shaped vectors have ~40 busy
dimensions and a query lies ~0.44 from its match against ~0.83 between people, so graph walks and cell
probes miss (measured in scripts/bench_enrollment.py: HNSW efSearch 1024 recall@1 0.979 at 1.5M; IVF
recall@1 0.98 at 100k only after probing a quarter of the cells).

The database stays the truth. The index only proposes candidates (search results are re-checked against
the DB, so a deactivated row left in the index costs a slot, never a wrong flag), and it can always be
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

log = logging.getLogger("bedcheck.persons.face_index")

DIM = 128
FORMAT_VERSION = 2  # 1 was HNSW: such files fail to read and are rebuilt
_MAGIC = b"BCFX"
_BATCH_ROWS = 50_000
_MAX_CANDIDATES = 8192  # exact re-ranks per search, at most (k=1 uses k_factor)


@dataclass(frozen=True)
class IndexParams:
    """Measured by scripts/bench_enrollment.py on dlib-shaped vectors, one core, 1.5M faces: recall@1 1.000
    with k_factor 128 (0.999 with 64, 0.979 with 16) at ~5 ms CPU a query, p99 ~6 ms CPU; 32 sub-quantisers
    instead of 64 reach only 0.93. Below `exact_below` rows a brute-force scan is exact and faster still."""

    exact_below: int = 20_000
    pq_m: int = 64  # sub-quantisers of 4 bits: two dimensions each
    k_factor: int = 128  # PQ candidates re-ranked exactly per neighbour asked for
    train_sample: int = 100_000  # rows the quantiser is trained on when the index outgrows the flat scan


@dataclass(frozen=True)
class Fingerprint:
    """What a set of embedding rows is: enough to tell "same", "only rows added" and "changed" apart."""

    count: int = 0
    max_id: int = 0
    id_sum: int = 0


class FaceIndex:
    """An in-memory ANN index of enrolled faces; `search` gives (embedding id, Euclidean distance) pairs."""

    def __init__(self, params: IndexParams | None = None, *, index: faiss.Index | None = None,
                 fingerprint: Fingerprint | None = None, database: str = "", engine: str | None = None) -> None:
        self.params = params or IndexParams()
        self.database = database  # which database the rows came from (a URL digest, no password)
        self.engine = engine  # the one engine (tag) whose embeddings it holds; None: every row (tests, tools)
        self._index = index if index is not None else faiss.IndexIDMap(faiss.IndexFlatL2(DIM))
        self.fingerprint = fingerprint or Fingerprint()
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Adds embeddings under their row ids (ids must be new and larger than any held)."""
        if len(ids) == 0:
            return
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, DIM)
        with self.lock:
            if self.exact and len(self) + len(ids) >= self.params.exact_below:
                self._quantise(ids, vectors)
            else:
                self._index.add_with_ids(vectors, ids)
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
        k = min(k, len(self))
        with self.lock:
            refine = self._refine()
            if refine is not None:
                # Wide searches (a person with many photos) need depth, not k_factor times k candidates.
                refine.k_factor = float(max(2, min(self.params.k_factor, _MAX_CANDIDATES // k)))
            squared, ids = self._index.search(query, k)
        return [(int(i), float(np.sqrt(max(d, 0.0)))) for d, i in zip(squared[0], ids[0], strict=True) if i >= 0]

    def save(self, path: Path) -> None:
        """Writes the index atomically (temporary file, fsync, `os.replace`)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            header = json.dumps({"version": FORMAT_VERSION, "params": asdict(self.params), "database": self.database,
                                 "engine": self.engine, "fingerprint": asdict(self.fingerprint)}).encode()
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
                   database=str(header.get("database", "")), engine=header.get("engine"))

    @property
    def exact(self) -> bool:
        """True while the gallery is searched by brute force (no quantiser yet)."""
        return self._refine() is None

    def _refine(self) -> faiss.IndexRefine | None:
        inner = faiss.downcast_index(self._index.index)
        return inner if isinstance(inner, faiss.IndexRefine) else None

    def _quantise(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replaces the flat scan by PQ fast scan + exact re-ranking, trained on the rows held and `vectors`."""
        flat = faiss.downcast_index(self._index.index)
        held_ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        all_ids = np.concatenate([held_ids, ids])
        all_vectors = np.concatenate([flat.reconstruct_n(0, flat.ntotal).reshape(-1, DIM), vectors])
        rng = np.random.default_rng(0)  # a fixed sample: the same rows give the same index
        sample = all_vectors[np.sort(rng.choice(len(all_vectors), min(self.params.train_sample, len(all_vectors)),
                                                replace=False))]
        base = faiss.IndexPQFastScan(DIM, self.params.pq_m, 4)
        base.train(sample)
        index = faiss.IndexIDMap(faiss.IndexRefineFlat(base))
        index.add_with_ids(all_vectors, all_ids)
        self._index = index
        log.info("face index: %d embeddings, quantised", len(all_ids))


# --- the database side -----------------------------------------------------------------------------------
def _enrolled(engine: str | None) -> list:
    where = [col(FaceEmbedding.insured_person_id).is_not(None), FaceEmbedding.is_active == True]  # noqa: E712
    if engine is not None:
        where.append(FaceEmbedding.engine_version == engine)
    return where


def db_fingerprint(db: Session, *, up_to_id: int | None = None, engine: str | None = None) -> Fingerprint:
    """Fingerprint of the active insured-person embeddings of `engine` (optionally only ids <= `up_to_id`)."""
    where = _enrolled(engine)
    if up_to_id is not None:
        where.append(col(FaceEmbedding.id) <= up_to_id)
    count, max_id, id_sum = db.exec(
        select(func.count(col(FaceEmbedding.id)), func.max(FaceEmbedding.id), func.sum(FaceEmbedding.id)).where(*where)
    ).one()
    return Fingerprint(int(count or 0), int(max_id or 0), int(id_sum or 0))


def iter_enrolled(db: Session, *, after_id: int = 0,
                  engine: str | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Active insured-person embeddings of `engine` with id > `after_id`, in id order, as (ids, vectors) batches."""
    last = after_id
    while True:
        rows = db.exec(select(FaceEmbedding.id, FaceEmbedding.vector)
                       .where(*_enrolled(engine), col(FaceEmbedding.id) > last)
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


def build_from_db(db: Session, params: IndexParams | None = None, *, engine: str | None = None) -> FaceIndex:
    """A new index of every active enrolled embedding of `engine`."""
    index = FaceIndex(params, database=database_identity(db), engine=engine)
    catch_up(db, index)
    return index


def catch_up(db: Session, index: FaceIndex) -> int:
    """Adds rows enrolled since the index was last in step with the DB; returns how many."""
    added = 0
    for ids, vectors in iter_enrolled(db, after_id=index.fingerprint.max_id, engine=index.engine):
        index.add(ids, vectors)
        added += len(ids)
    return added


def load_or_rebuild(db: Session, path: Path, params: IndexParams | None = None, *,
                    engine: str | None = None) -> tuple[FaceIndex, str]:
    """The index of `engine`'s embeddings at `path` brought in step with the DB, or rebuilt; saved when it changed.

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
            built_alike = (index.params.exact_below, index.params.pq_m) == (params.exact_below, params.pq_m)
            if (not built_alike or index.database != database_identity(db) or index.engine != engine
                    or db_fingerprint(db, up_to_id=index.fingerprint.max_id, engine=engine) != index.fingerprint):
                index, outcome = None, "rebuilt_stale"
    if index is None:
        index = build_from_db(db, params, engine=engine)
        index.save(path)
        log.info("face index %s: %d embeddings", outcome, len(index))
        return index, outcome
    index.params = params  # k_factor and train_sample do not shape a built index: a file saved with others is good
    added = catch_up(db, index)
    if added:
        index.save(path)
        return index, "caught_up"
    return index, "loaded"
