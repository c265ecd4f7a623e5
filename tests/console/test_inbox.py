"""我的待办 (issue 29): each role lands on what it can act on now, with counts that match the queue's default
view; search by flag number ignores the status filter; the small things a first visit trips over."""

from __future__ import annotations

import re
from contextlib import closing

import httpx
from sqlmodel import Session, select

from server.flags.tables import Flag
from server.persons.tables import InsuredPerson
from tests.console.helpers import csrf_of, factories, sign_in


def _piles(client: httpx.Client) -> dict[str, int]:
    page = client.get("/console/todo")
    assert page.status_code == 200
    return {key: int(n) for key, n in re.findall(
        r'data-pile="(\w+)">\s*<span class="pile-count">(\d+)</span>', page.text)}


def _queue_ids(client: httpx.Client, **params: str) -> set[int]:
    page = client.get("/console/flags", params=params)
    assert page.status_code == 200
    return {int(i) for i in re.findall(r'<tr data-flag-id="(\d+)"', page.text)}


def _review(client: httpx.Client, flag_id: int, to: str, reason: str) -> None:
    page = client.get(f"/console/flags/{flag_id}")
    done = client.post(f"/console/flags/{flag_id}/review",
                       data={"csrf_token": csrf_of(page), "to": to, "reason": reason})
    assert done.status_code == 303, done.text


def test_each_role_lands_on_its_own_work_and_the_queue_opens_on_exactly_that(county) -> None:
    server, world, flags = county
    h1, h2 = world.hospital_ids
    first, second = flags[(h1, "impersonated")], flags[(h2, "absent")]
    with closing(sign_in(server.url, "rev")) as rev, closing(sign_in(server.url, "sup")) as sup, \
            closing(sign_in(server.url, "staff1")) as staff:
        assert rev.get("/console").headers["location"] == "/console/todo"
        assert _piles(rev) == {"pile_first_review": 4}
        assert _piles(sup) == {"pile_final_review": 0, "pile_appeal_decision": 0}
        assert _piles(staff) == {"pile_appealable": 0}  # nothing reviewed yet: nothing to answer

        _review(rev, first, "first_reviewed", "face_mismatch")
        _review(sup, second, "first_reviewed", "bed_empty")  # the supervisor's own first review
        assert _piles(rev) == {"pile_first_review": 2}
        assert _queue_ids(rev) == set(flags.values()) - {first, second}
        # The final review of `second` is someone else's: the supervisor's pile holds `first` only.
        assert _piles(sup) == {"pile_final_review": 1, "pile_appeal_decision": 0}
        assert _queue_ids(sup) == {first}
        assert _queue_ids(sup, status="mine:first_reviewed") == {first}
        # Hospital 1 may appeal its reviewed flag; hospital 2's is not theirs to see.
        assert _piles(staff) == {"pile_appealable": 1}
        assert _queue_ids(staff) == {first}
        todo_page = staff.get("/console/todo").text
        assert f'data-flag-id="{first}"' in todo_page and f'data-flag-id="{second}"' not in todo_page


def test_a_flag_number_is_found_whatever_the_status_filter_and_part_of_an_insurance_number_matches(
        county, engine) -> None:
    server, world, flags = county
    flag_id = flags[(world.hospital_ids[0], "absent")]
    with Session(engine) as db:
        flag = db.get(Flag, flag_id)
        assert flag is not None and flag.insured_person_id is not None
        number = db.exec(select(InsuredPerson.insurance_number)
                         .where(InsuredPerson.id == flag.insured_person_id)).one()
    with closing(sign_in(server.url, "rev")) as rev:
        assert _queue_ids(rev, q=f"#{flag_id}", status="confirmed") == {flag_id}
        assert _queue_ids(rev, q=f"#{flag_id}") == {flag_id}
        tail = number[-5:]
        assert flag_id in _queue_ids(rev, q=tail, status="all")
        assert flag_id in _queue_ids(rev, q=number[2:-2], status="all")


def test_the_queue_offers_the_last_view_without_imposing_it(county) -> None:
    server, _world, _flags = county
    with closing(sign_in(server.url, "rev")) as rev:
        rev.get("/console/flags", params={"status": "all", "per_page": "200"})
        page = rev.get("/console/flags").text
        selected = re.search(r'<select name="status" id="f-status">(.*?)</select>', page, re.S)
        assert selected and 'value="mine" selected' in selected.group(1)  # the nav link opens the day's work
        assert 'id="restore-view"' in page and "per_page=200" in page


def test_first_visit_small_things(county) -> None:
    server, _world, _flags = county
    with httpx.Client(base_url=server.url) as anonymous:
        root = anonymous.get("/")
        assert root.status_code in (302, 307) and root.headers["location"] == "/console"
        form = anonymous.get("/console/sign-in")
        wrong = anonymous.post("/console/sign-in", data={"csrf_token": csrf_of(form), "username": "rev",
                                                         "password": "not-the-password"})
        assert wrong.status_code == 401 and 'value="rev"' in wrong.text
        assert "北京时间" in form.text and "Asia/Shanghai" not in form.text
    with closing(sign_in(server.url, "rev")) as rev:
        missing = rev.get("/console/flags/abc")
        assert missing.status_code == 404 and 'id="current-user"' in missing.text
        assert factories.PASSWORD not in missing.text


def test_form_errors_stand_beside_the_field_with_what_was_typed(county) -> None:
    server, world, flags = county
    h1 = world.hospital_ids[0]
    flag_id = flags[(h1, "impersonated")]
    with closing(sign_in(server.url, "rev")) as rev:
        _review(rev, flag_id, "first_reviewed", "face_mismatch")
    with closing(sign_in(server.url, "staff1")) as staff:
        page = staff.get(f"/console/flags/{flag_id}")
        refused = staff.post(f"/console/flags/{flag_id}/appeal", data={
            "csrf_token": csrf_of(page), "statement": "患者当时在放射科检查"},
            files=[("attachments", ("检查单.docx", b"PK\x03\x04 not a pdf", "application/octet-stream"))])
        assert refused.status_code == 422
        assert "检查单.docx" in refused.text and "患者当时在放射科检查" in refused.text  # named, and kept
        assert re.search(r'id="attachments"[^>]*class="invalid"', refused.text)
    with closing(sign_in(server.url, "sup")) as sup:
        form = sup.get("/console/launch")
        launch = sup.post("/console/launch", data={"csrf_token": csrf_of(form), "scope": "hospitals",
                                                   "deadline_minutes": "45"})
        assert launch.status_code == 422 and 'id="scope-error"' in launch.text and 'id="launch-form"' in launch.text
        assert 'value="45"' in launch.text and re.search(r'id="scope-hospitals"\s+checked', launch.text)
