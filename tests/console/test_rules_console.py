"""The review's rules through the console (forms and pages, a real server); the same rules through the JSON
API are in tests/server/test_rules_api.py. Both call server/flags/workflow.py and server/campaigns/service.py."""

from __future__ import annotations

import re
import time
from contextlib import closing

import httpx
from sqlmodel import Session, select

from server.audit.tables import AuditRecord
from server.campaigns.service import create_campaign
from server.campaigns.tables import Campaign
from server.flags.tables import Flag, FlagStatus
from server.hospitals import registry
from server.hospitals.tables import Hospital
from tests.console.helpers import csrf_of, sign_in


def _review(client: httpx.Client, flag_id: int, to: str, reason: str, comment: str = "") -> httpx.Response:
    page = client.get(f"/console/flags/{flag_id}")
    return client.post(f"/console/flags/{flag_id}/review", data={"csrf_token": csrf_of(page), "to": to,
                                                                 "reason": reason, "comment": comment})


def _status(engine, flag_id: int) -> FlagStatus:
    with Session(engine) as db:
        flag = db.get(Flag, flag_id)
        assert flag is not None
        return flag.status


def test_the_first_reviewer_cannot_make_the_final_review_in_the_console(county, engine) -> None:
    server, world, flags = county
    flag_id = flags[(world.hospital_ids[0], "impersonated")]
    with closing(sign_in(server.url, "sup")) as sup:
        assert _review(sup, flag_id, "first_reviewed", "face_mismatch").status_code == 303
        page = sup.get(f"/console/flags/{flag_id}").text
        assert 'id="awaiting-other-reviewer"' in page and 'id="review-form"' not in page
        refused = _review(sup, flag_id, "confirmed", "evidence_clear")
        assert refused.status_code == 403 and "另一人" in refused.text
        assert _review(sup, flag_id, "dismissed", "false_match").status_code == 403
    assert _status(engine, flag_id) == FlagStatus.FIRST_REVIEWED


def test_a_first_review_cannot_dismiss_a_flag_in_the_console(county, engine) -> None:
    server, world, flags = county
    flag_id = flags[(world.hospital_ids[0], "absent")]
    with closing(sign_in(server.url, "rev")) as rev, closing(sign_in(server.url, "sup")) as sup:
        page = rev.get(f"/console/flags/{flag_id}").text
        # A first review recommends (建议确认 / 建议排除); dismissing is not offered...
        assert 'id="to-recommend_dismiss"' in page and 'id="to-dismissed"' not in page
        assert _review(rev, flag_id, "dismissed", "false_match").status_code == 409  # ...nor accepted
        assert _review(sup, flag_id, "dismissed", "false_match").status_code == 409
        assert _review(rev, flag_id, "recommend_dismiss", "valid_exemption", "外出检查").status_code == 303
        assert _review(sup, flag_id, "dismissed", "valid_exemption").status_code == 303
    assert _status(engine, flag_id) == FlagStatus.DISMISSED


def test_an_appeal_on_a_flag_waiting_for_first_review_is_refused_in_the_console(county, engine) -> None:
    server, world, flags = county
    flag_id = flags[(world.hospital_ids[0], "absent")]
    with closing(sign_in(server.url, "staff1")) as staff:
        page = staff.get(f"/console/flags/{flag_id}")
        assert 'id="appeal-form"' not in page.text
        refused = staff.post(f"/console/flags/{flag_id}/appeal",
                             data={"csrf_token": csrf_of(page), "statement": "病人在做检查"})
        assert refused.status_code == 409
    assert _status(engine, flag_id) == FlagStatus.OPEN
    with closing(sign_in(server.url, "rev")) as rev:
        assert _review(rev, flag_id, "first_reviewed", "bed_empty").status_code == 303
    with closing(sign_in(server.url, "staff1")) as staff:
        assert 'id="appeal-form"' in staff.get(f"/console/flags/{flag_id}").text


def test_a_duplicate_admission_flag_shows_in_the_console_and_a_discharge_resolves_it(county, engine) -> None:
    from tests.server.test_rules_api import _roster, login

    server, world, _ = county
    with Session(engine) as db:
        codes = [h.code for h in db.exec(select(Hospital).order_by(Hospital.id))]
        beds = "hospital_code,ward_code,bed_label\n" + "".join(f"{c},W9,01\n" for c in codes)
        registry.import_beds(db, rows=registry.parse_beds(beds.encode()), actor="test")
    with closing(login(server.url, "sup")) as api:
        _roster(api, [f"{codes[0]},W9,01,DUP-9,陈二,X9,2026-11-01T08:00:00,",
                      f"{codes[1]},W9,01,DUP-9,陈二,Y9,2026-11-02T08:00:00,"])
    with closing(sign_in(server.url, "sup")) as sup:
        queue = sup.get("/console/flags", params={"kind": "duplicate_admission"}).text
        (flag_id,) = re.findall(r'data-flag-id="(\d+)"', queue)
        detail = sup.get(f"/console/flags/{flag_id}").text
        assert 'data-status="open"' in detail
        with closing(login(server.url, "sup")) as api:
            _roster(api, [f"{codes[1]},W9,01,DUP-9,陈二,Y9,2026-11-02T08:00:00,2026-11-04T08:00:00"])
        detail = sup.get(f"/console/flags/{flag_id}").text
        assert 'data-status="resolved"' in detail and "已解除" in detail


def _launch(client: httpx.Client, **data) -> httpx.Response:
    return client.post("/console/launch", data={"csrf_token": csrf_of(client.get("/console/launch")), **data})


def test_the_launch_form_launches_exactly_the_chosen_hospitals_after_confirming_the_beds(county, engine) -> None:
    server, world, _ = county
    h1, _ = world.hospital_ids
    with closing(sign_in(server.url, "sup")) as sup:
        assert _launch(sup, scope="county", county="").status_code == 422  # nothing chosen: refused
        assert _launch(sup, scope="hospitals").status_code == 422
        # Hospitals picked while the radio still says "county": the hospitals are the choice, shown back.
        step = _launch(sup, scope="county", county=world.county, hospitals=str(h1), deadline_minutes="5")
        assert step.status_code == 200 and 'data-beds="3"' in step.text
        with Session(engine) as db:
            assert len(list(db.exec(select(Campaign)))) == 1  # nothing launched before the confirmation
        confirmed = sup.post("/console/launch", data={"csrf_token": csrf_of(step), "scope": "hospitals",
                                                      "hospitals": str(h1), "deadline_minutes": "5",
                                                      "confirm_beds": "3"})
        assert confirmed.status_code == 303
        campaign_id = confirmed.headers["location"].split("=")[1]
        progress = sup.get(f"/console/campaigns/{campaign_id}/progress").json()
        assert progress["total"] == 3 and set(progress["by_hospital"]) == {str(h1)}
        stale = sup.post("/console/launch", data={"csrf_token": csrf_of(step), "scope": "hospitals",
                                                  "hospitals": str(h1), "deadline_minutes": "5", "confirm_beds": "7"})
        assert stale.status_code == 200 and 'id="beds-changed"' in stale.text  # a changed count asks again


def test_hospital_staff_see_no_running_check_and_only_their_hospitals_rate_in_the_console(county, engine) -> None:
    server, world, _ = county
    with Session(engine, expire_on_commit=False) as db:
        running = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    with closing(sign_in(server.url, "staff1")) as staff, closing(sign_in(server.url, "sup")) as sup:
        assert staff.get(f"/console/campaigns/{running.id}/progress").status_code == 404
        assert staff.get("/console/dashboard", params={"campaign_id": running.id}).status_code == 404
        assert f'campaign_id={running.id}"' not in staff.get("/console/dashboard").text
        assert f'campaign_id={running.id}"' in sup.get("/console/dashboard").text
        done = staff.get("/console/campaigns/1/progress").json()  # the finished check: own hospital only
        assert set(done["by_hospital"]) == {str(world.hospital_ids[0])} and done["total"] == 3
        assert done["verification_rate"] == 1 / 3
        with Session(engine) as db:  # past its deadline the check is announced
            campaign = db.get(Campaign, running.id)
            campaign.deadline_at = campaign.created_at
            db.add(campaign)
            db.commit()
        assert staff.get(f"/console/campaigns/{running.id}/progress").status_code == 200


def test_each_campaigns_expiries_show_under_that_campaign_in_the_console(engine, live_server) -> None:
    from tests.console import helpers

    with Session(engine, expire_on_commit=False) as db:
        world = helpers.build(db)
        one = create_campaign(db, hospital_ids=[world.hospital_ids[0]], deadline_s=1, actor="test")
        two = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=1, actor="test")
    server = live_server(run_scheduler=True, sweep_interval_s=0.2)
    time.sleep(2.5)
    with closing(sign_in(server.url, "sup")) as sup:
        counts = {c.id: sup.get(f"/console/campaigns/{c.id}/progress").json()["counts"]["overdue"] for c in (one, two)}
    assert counts == {one.id: 3, two.id: 6}
    with Session(engine) as db:
        swept = {int(r.object_id): r.data["overdue"] for r in db.exec(
            select(AuditRecord).where(AuditRecord.action == "deadline.swept"))}
    assert swept == counts
