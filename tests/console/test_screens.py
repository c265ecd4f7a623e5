"""Each role's first screens in headless Chromium at 1366x900 and at a 390 px phone (issue 29): sign-in lands on
我的待办 with its counts, the queue opens on exactly that work, and a flag of every kind shows its photos at one
size beside the decision, above the fold, with no raw key on the page. Screenshots (generated stand-in
pictures only: the county's enrolled photos are drawn placeholders, its crops synthetic) are kept in
docs/screenshots/."""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path

import pytest
from sqlmodel import Session

from models.verdicts import FlagKind
from server.campaigns.tables import CheckTask
from server.flags import service as flag_service
from server.flags.tables import Flag
from tests.console import helpers
from tests.console.test_flag_kinds import BUREAU_ONLY, _details_of_every_kind, raw_values

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTHS = {"1366": {"width": 1366, "height": 900}, "390": {"width": 390, "height": 844}}
ROLES = {"reviewer": "rev", "supervisor": "sup", "hospital": "staff1"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Chromium not found at /usr/bin/chromium: "
                                                      "run `bash scripts/system_deps.sh` as root"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


def _shot(page, name: str, *, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def _text(page) -> str:
    return page.evaluate("""() => { const c = document.body.cloneNode(true);
        c.querySelectorAll('.mono, script, style').forEach(e => e.remove()); return c.textContent; }""")


def _first_reviewed(client, flag_id: int, kind: FlagKind) -> None:
    """A first review recommending confirmation, with the first reason that fits the flag's kind."""
    from server.flags.workflow import CONFIRMING, KIND_REASONS

    reason = KIND_REASONS.get(kind, (CONFIRMING, ()))[0][0]
    page = client.get(f"/console/flags/{flag_id}")
    done = client.post(f"/console/flags/{flag_id}/review", data={
        "csrf_token": helpers.csrf_of(page), "to": "recommend_confirm", "reason": reason.value})
    assert done.status_code == 303, done.text[:500]


def test_each_role_lands_on_its_work_and_reads_every_kind_of_flag(county, engine, browser) -> None:
    server, world, flags = county
    h1, h2 = world.hospital_ids
    made: dict[str, int] = {}
    with Session(engine) as db:
        task_id = db.get(Flag, flags[(h1, "impersonated")]).task_id  # type: ignore[union-attr]
        for label, (details, with_task) in _details_of_every_kind(
                db, h1, h2, [flags[(h1, "absent")], flags[(h1, "impersonated")]]).items():
            if ":" in label:
                continue  # one flag of each kind is enough to look at
            kind = FlagKind(label)
            flag = flag_service.raise_flag(db, kind=kind, details=details,
                                           task=db.get(CheckTask, task_id) if with_task else None,
                                           hospital_id=None if kind in BUREAU_ONLY else h1)
            made[label] = flag.id or 0
        db.commit()
    made |= {"absent": flags[(h1, "absent")], "impersonated": flags[(h1, "impersonated")]}
    assert set(made) == {k.value for k in FlagKind}
    # Work for each pile: the reviewer's first reviews give the supervisor final reviews and the hospital
    # flags to appeal.
    with closing(helpers.sign_in(server.url, "rev")) as rev:
        for kind in ("impersonated", "absent", "spoof"):
            _first_reviewed(rev, made[kind], FlagKind(kind))

    problems: list[str] = []
    for width, viewport in WIDTHS.items():
        for role, username in ROLES.items():
            context = browser.new_context(base_url=server.url, locale="zh-CN", viewport=viewport)
            page = context.new_page()
            try:
                page.goto("/console/flags")
                page.fill("#username", username)
                page.fill("#password", helpers.factories.PASSWORD)
                page.click("#sign-in")
                page.wait_for_url(re.compile(r"/console/flags"))  # back where the reader was going
                page.goto("/console")
                page.wait_for_url(re.compile(r"/console/todo$"))
                counts = page.locator(".pile-count").all_inner_texts()
                assert counts and all(n.isdigit() for n in counts)
                if role != "reviewer":
                    assert int(counts[0]) == 3  # the three first-reviewed flags: final review / to appeal
                problems += [f"{role} {width} todo: {p}" for p in raw_values(_text(page), "zh")]
                _shot(page, f"{role}-{width}-landing")

                page.locator(".pile").first.click()
                page.wait_for_url(re.compile(r"/console/flags\?status=mine"))
                shown = page.locator("#flag-table tbody tr").count() if int(counts[0]) else 0
                assert shown == int(counts[0])  # the queue lists exactly the landing page's count
                problems += [f"{role} {width} queue: {p}" for p in raw_values(_text(page), "zh")]
                _shot(page, f"{role}-{width}-queue")
                if width == "390":
                    filters = page.locator("details#filters-fold")
                    assert filters.get_attribute("open") is None  # folded on a phone
                    assert page.evaluate("document.documentElement.scrollWidth") <= 390

                # A flag of each kind: the reviewer at a desk, the hospital on a phone.
                if (role, width) not in (("reviewer", "1366"), ("hospital", "390")):
                    continue
                for kind, flag_id in sorted(made.items()):
                    if role == "hospital" and FlagKind(kind) in BUREAU_ONLY:
                        continue
                    page.goto(f"/console/flags/{flag_id}")
                    problems += [f"{role} {width} {kind}: {p}" for p in raw_values(_text(page), "zh")]
                    boxes = page.locator("#faces img, #faces .noimg").evaluate_all(
                        "l => l.map(e => e.getBoundingClientRect().width)")
                    assert len(set(boxes)) <= 1, (kind, boxes)  # every picture at one size
                    if not page.locator("#faces").count():
                        assert not page.locator(".noimg").count()  # no empty boxes for kinds without pictures
                    if width == "1366" and page.locator("#review-form").count():
                        top = page.locator("#review-form").evaluate("e => e.getBoundingClientRect().top")
                        assert top < 900, (kind, top)  # the decision is above the fold
                        assert page.locator("#developer").get_attribute("open") is None
                    _shot(page, f"{role}-{width}-flag-{kind}", full=False)
            finally:
                context.close()
    assert not problems, "\n".join(problems)
