"""An appeal is decided by a third person: neither the first reviewer nor whoever confirmed the flag (issue 26),
in the console (the JSON API's path: tests/server/test_eligibility_leave_funds.py)."""

from __future__ import annotations

from contextlib import closing

import httpx
from sqlmodel import Session

from server.accounts.tables import Role
from server.flags.tables import Flag, FlagStatus
from tests import factories
from tests.console.helpers import csrf_of, sign_in


def _review(client: httpx.Client, flag_id: int, to: str, reason: str) -> httpx.Response:
    page = client.get(f"/console/flags/{flag_id}")
    return client.post(f"/console/flags/{flag_id}/review",
                       data={"csrf_token": csrf_of(page), "to": to, "reason": reason})


def test_an_appeal_is_decided_by_a_third_person_in_the_console(county, engine) -> None:
    server, world, flags = county
    flag_id = flags[(world.hospital_ids[0], "absent")]
    with Session(engine) as db:
        factories.user(db, "sup2", Role.SUPERVISOR)
    with closing(sign_in(server.url, "rev")) as rev, closing(sign_in(server.url, "sup")) as sup, \
            closing(sign_in(server.url, "staff1")) as staff, closing(sign_in(server.url, "sup2")) as third:
        assert _review(rev, flag_id, "first_reviewed", "bed_empty").status_code == 303
        assert _review(sup, flag_id, "confirmed", "bed_empty").status_code == 303
        page = staff.get(f"/console/flags/{flag_id}")
        assert staff.post(f"/console/flags/{flag_id}/appeal",
                          data={"csrf_token": csrf_of(page), "statement": "病人当时在做检查"}).status_code == 303
        # The confirmer is offered no decision and is refused one; so is the first reviewer.
        mine = sup.get(f"/console/flags/{flag_id}").text
        assert 'id="review-form"' not in mine and 'id="awaiting-other-reviewer"' in mine
        assert _review(sup, flag_id, "dismissed", "appeal_accepted").status_code == 403
        assert _review(rev, flag_id, "dismissed", "appeal_accepted").status_code == 403
        assert 'id="review-form"' in third.get(f"/console/flags/{flag_id}").text
        assert _review(third, flag_id, "dismissed", "appeal_accepted").status_code == 303
    with Session(engine) as db:
        flag = db.get(Flag, flag_id)
        assert flag is not None and flag.status == FlagStatus.DISMISSED
