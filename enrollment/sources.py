"""What to enroll: (insurance number, name, photo file) jobs from a roster CSV or a photo folder layout.

Layouts:
- roster: `insurance_number,name,photo` (one row per photo; a person may have several rows) or a `photos`
  column with `;`-separated names, relative to the photo directory; photos in `DIR/<insurance_number>/`
  are added for every roster person too.
- folders: `DIR/<person>/*.jpg` (as ../shared/faces/people): one person per folder.
- flat: `DIR/*.jpg` (as ../shared/faces/deepface): one person per file, unless a pairs file
  (`file_x,file_y,Decision`, as deepface's master.csv) says two files show the same person ("Yes").

Without a roster, insurance numbers are generated deterministically, so a rerun maps each folder or file to
the same person: `AUTO-` + the first 12 hex digits of sha256("<directory name>/<person key>"), upper case;
the name is the person key with `_` turned into spaces. `--id-prefix` replaces `AUTO`.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from models.errors import ReasonCode

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_INSURANCE_NUMBER = 40
MAX_NAME = 120


@dataclass(frozen=True)
class PhotoJob:
    insurance_number: str
    name: str
    path: Path
    line: int | None = None  # the roster line that named this person (None: a folder or flat layout)


@dataclass(frozen=True)
class SourceReject:
    """A roster line or a named photo that could not become a job (the rejects report lists it)."""

    line: int
    insurance_number: str
    photo: str
    code: str
    message: str


@dataclass
class Jobs:
    jobs: list[PhotoJob]
    rejects: list[SourceReject]


def generated_insurance_number(directory: Path, key: str, prefix: str = "AUTO") -> str:
    digest = hashlib.sha256(f"{directory.resolve().name}/{key}".encode()).hexdigest()[:12].upper()
    return f"{prefix}-{digest}"


def _images_in(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def folder_jobs(photos: Path, *, prefix: str = "AUTO") -> list[PhotoJob]:
    """One person per sub-folder of `photos`."""
    jobs = []
    for folder in sorted(p for p in photos.iterdir() if p.is_dir()):
        number = generated_insurance_number(photos, folder.name, prefix)
        name = folder.name.replace("_", " ")
        jobs += [PhotoJob(number, name, path) for path in _images_in(folder)]
    return jobs


def flat_jobs(photos: Path, *, pairs: Path | None = None, prefix: str = "AUTO") -> list[PhotoJob]:
    """One person per image file of `photos`, files a pairs file marks as the same person merged."""
    files = _images_in(photos)
    parent = {f.name: f.name for f in files}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    if pairs is not None:
        with open(pairs, newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                x, y = row.get("file_x", ""), row.get("file_y", "")
                if (row.get("Decision") or "").strip().lower() == "yes" and x in parent and y in parent:
                    # The smallest name becomes the person key, so the grouping does not depend on row order.
                    a, b = sorted((root(x), root(y)))
                    parent[b] = a
    jobs = []
    for f in files:
        key = Path(root(f.name)).stem
        jobs.append(PhotoJob(generated_insurance_number(photos, key, prefix), key.replace("_", " "), f))
    return jobs


def roster_jobs(roster: Path, photos: Path) -> Jobs:
    """Jobs from a roster CSV; bad lines and missing photos become rejects with their line number."""
    text = roster.read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower() for f in reader.fieldnames or []}
    jobs: list[PhotoJob] = []
    rejects: list[SourceReject] = []
    if "insurance_number" not in fields:
        rejects.append(SourceReject(1, "", "", ReasonCode.INVALID_INPUT.value,
                                    "the roster needs an insurance_number column"))
        return Jobs(jobs, rejects)
    seen_folders: set[str] = set()
    for raw in reader:
        line = reader.line_num  # physical line: a quoted field may span several
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(v, str)}
        number, name = row.get("insurance_number", ""), row.get("name", "")
        problem = _row_problem(number, name)
        if problem:
            rejects.append(SourceReject(line, number[:MAX_INSURANCE_NUMBER], "", ReasonCode.INVALID_INPUT.value,
                                        problem))
            continue
        names = [row.get("photo", "")] + row.get("photos", "").split(";")
        for photo in (n.strip() for n in names if n.strip()):
            path = (photos / photo).resolve()
            if not path.is_relative_to(photos.resolve()) or not path.is_file():
                rejects.append(SourceReject(line, number, photo, ReasonCode.NOT_FOUND.value,
                                            "photo file not found in the photo directory"))
                continue
            jobs.append(PhotoJob(number, name, path, line))
        if number not in seen_folders:
            seen_folders.add(number)
            jobs += [PhotoJob(number, name, p.resolve(), line) for p in _images_in(photos / number)]
    return Jobs(_unique(jobs), rejects)


def _row_problem(number: str, name: str) -> str:
    if not number:
        return "insurance_number is empty"
    if len(number) > MAX_INSURANCE_NUMBER or not number.isprintable() or "/" in number:
        return f"insurance_number must be at most {MAX_INSURANCE_NUMBER} printable characters without '/'"
    if len(name) > MAX_NAME:
        return f"name is longer than {MAX_NAME} characters"
    return ""


def _unique(jobs: list[PhotoJob]) -> list[PhotoJob]:
    seen: set[tuple[str, Path]] = set()
    out = []
    for job in jobs:
        if (job.insurance_number, job.path) not in seen:
            seen.add((job.insurance_number, job.path))
            out.append(job)
    return out
