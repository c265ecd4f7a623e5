"""Review and queue rules behind the pages: reasons that fit the decision, bulk review audited per flag,
the appeal deadline, the to-do list and the person page in hospital scope, search, 404/405 pages."""

from __future__ import annotations

from contextlib import closing
from datetime import timedelta

from sqlmodel import Session, col, select

from server.audit.tables import AuditRecord
from server.console.timeline import APPEAL_WINDOW
from server.flags.tables import Flag, FlagStatus
from server.persons.tables import InsuredPerson
from tests.console.helpers import csrf_of, sign_in


def test_a_reason_that_does_not_fit_the_decision_is_refused_and_the_form_keeps_the_input(county, engine) -> None:
    server, world, flags = county
    flag_id = flags[(world.hospital_ids[0], "impersonated")]
    with closing(sign_in(server.url, "rev")) as rev:
        token = csrf_of(rev.get(f"/console/flags/{flag_id}"))
        wrong = rev.post(f"/console/flags/{flag_id}/review",
                         data={"csrf_token": token, "to": "first_reviewed", "reason": "appeal_accepted",
                               "comment": "x"})
        assert wrong.status_code == 422 and "所选理由与处理结果不符" in wrong.text
        # No "bed empty" for an impersonation: a first review's reasons fit the flag's kind.
        unfit = rev.post(f"/console/flags/{flag_id}/review",
                         data={"csrf_token": token, "to": "recommend_confirm", "reason": "bed_empty"})
        assert unfit.status_code == 422 and "所选理由与处理结果不符" in unfit.text
        page = rev.get(f"/console/flags/{flag_id}").text
        assert "建议确认" in page and "建议排除" in page
        assert 'value="bed_empty" data-for="recommend_confirm"' not in page
        assert 'value="face_mismatch" data-for="recommend_confirm"' in page
        other = rev.post(f"/console/flags/{flag_id}/review",
                         data={"csrf_token": token, "to": "recommend_confirm", "reason": "other", "comment": " "})
        assert other.status_code == 422 and 'id="form-error"' in other.text
        assert 'value="recommend_confirm" id="to-recommend_confirm" required checked' in other.text
        none = rev.post(f"/console/flags/{flag_id}/review", data={"csrf_token": token, "reason": "false_match"})
        assert none.status_code == 422 and "请选择处理结果" in none.text
    with Session(engine) as db:
        assert db.get(Flag, flag_id).status == FlagStatus.OPEN


def test_bulk_dismissal_reviews_each_flag_with_its_own_audit_record(county, engine) -> None:
    server, world, flags = county
    h1 = world.hospital_ids[0]
    ids = [flags[(h1, "absent")], flags[(h1, "impersonated")]]
    for who, to in (("rev", "first_reviewed"), ("sup", "dismissed")):  # two people, as the workflow wants
        with closing(sign_in(server.url, who)) as client:
            token = csrf_of(client.get("/console/flags"))
            done = client.post("/console/flags/bulk", data={"csrf_token": token, "ids": [str(i) for i in ids],
                                                            "to": to, "reason": "device_fault",
                                                            "queue_query": f"hospital_id={h1}"})
            assert done.status_code == 303 and "bulk_done=2" in done.headers["location"]
            again = client.post("/console/flags/bulk", data={"csrf_token": token, "ids": [str(i) for i in ids],
                                                             "to": to, "reason": "device_fault"})
            assert "bulk_done=0" in again.headers["location"] and "bulk_skipped=2" in again.headers["location"]
        theirs = flags[(world.hospital_ids[1], "absent")]
    with closing(sign_in(server.url, "staff1")) as staff:
        token = csrf_of(staff.get("/console/flags"))
        refused = staff.post("/console/flags/bulk", data={"csrf_token": token, "ids": [str(theirs)],
                                                          "to": "dismissed", "reason": "device_fault"})
        assert refused.status_code == 404
    with Session(engine) as db:
        assert {db.get(Flag, i).status for i in ids} == {FlagStatus.DISMISSED}
        assert db.get(Flag, theirs).status == FlagStatus.OPEN
        audited = db.exec(select(AuditRecord.object_id).where(AuditRecord.action == "flag.transition",
                                                              col(AuditRecord.object_id).in_([str(i) for i in ids])))
        assert sorted(audited) == sorted(str(i) for i in ids for _ in range(2))


def test_the_todo_list_and_the_appeal_deadline(county, engine) -> None:
    server, world, flags = county
    h1, h2 = world.hospital_ids
    late = flags[(h1, "absent")]
    with closing(sign_in(server.url, "rev")) as rev:  # a hospital answers once a person has looked
        token = csrf_of(rev.get("/console/flags"))
        rev.post("/console/flags/bulk", data={"csrf_token": token, "to": "recommend_confirm",
                                              "reason": "evidence_clear", "ids": [str(flags[(h, k)]) for h in (h1, h2)
                                                      for k in ("absent", "impersonated")]})
    with Session(engine) as db:
        flag = db.get(Flag, late)
        flag.created_at = flag.created_at - APPEAL_WINDOW - timedelta(hours=1)
        db.add(flag)
        db.commit()
    with closing(sign_in(server.url, "staff1")) as staff:
        todo = staff.get("/console/todo").text
        assert f'data-flag-id="{flags[(h1, "impersonated")]}"' in todo and f'data-flag-id="{late}"' not in todo
        assert f'data-flag-id="{flags[(h2, "impersonated")]}"' not in todo
        token = csrf_of(staff.get(f"/console/flags/{late}"))
        refused = staff.post(f"/console/flags/{late}/appeal", data={"csrf_token": token, "statement": "迟到的申诉"})
        assert refused.status_code == 422 and "申诉期限已过" in refused.text and "迟到的申诉" in refused.text
    with Session(engine) as db:
        assert db.get(Flag, late).status == FlagStatus.FIRST_REVIEWED


def test_person_page_search_and_error_pages_stay_in_scope(county, engine) -> None:
    server, world, flags = county
    h1, h2 = world.hospital_ids
    with Session(engine) as db:
        mine = db.get(InsuredPerson, db.get(Flag, flags[(h1, "impersonated")]).insured_person_id)
        theirs = db.get(Flag, flags[(h2, "impersonated")]).insured_person_id
    with closing(sign_in(server.url, "staff1")) as staff, closing(sign_in(server.url, "rev")) as rev:
        assert mine.name in staff.get(f"/console/persons/{mine.id}").text
        assert staff.get(f"/console/persons/{theirs}").status_code == 404
        assert staff.get(f"/console/persons/{theirs}/photo.jpg").status_code == 404
        found = rev.get("/console/flags", params={"q": mine.insurance_number}).text
        assert f'data-flag-id="{flags[(h1, "impersonated")]}"' in found
        assert f'data-flag-id="{flags[(h2, "impersonated")]}"' not in found
        by_id = rev.get("/console/flags", params={"q": f"#{flags[(h2, 'absent')]}"}).text
        assert f'data-flag-id="{flags[(h2, "absent")]}"' in by_id
        missing = rev.get("/console/nope")
        assert missing.status_code == 404 and 'data-nav="flags"' in missing.text and "页面不存在" in missing.text
        wrong_method = rev.get("/console/sign-out")
        assert wrong_method.status_code == 405 and "text/html" in wrong_method.headers["content-type"]
        assert rev.get("/api/v1/nope").headers["content-type"].startswith("application/json")
        english = rev.get("/console/flags", params={"status": "bogus", "lang": "en"})
        assert english.status_code == 422 and "unknown value" not in english.text and "does not exist" in english.text
