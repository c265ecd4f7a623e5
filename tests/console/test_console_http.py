"""Console over real HTTP (SQLite and PostgreSQL): sessions, CSRF, hospital scope in pages and APIs, review,
appeals with attachment limits, audit."""

from __future__ import annotations

import time
from contextlib import closing

import httpx
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlmodel import Session, col, select

from server.audit.service import verify
from server.audit.tables import AuditRecord
from server.settings import DEV_SECRET
from tests.console import helpers
from tests.console.helpers import csrf_of, sign_in


def test_pages_need_a_session_and_sign_in_sets_an_expiring_httponly_cookie(county) -> None:
    server, _, _ = county
    with httpx.Client(base_url=server.url) as anonymous:
        page = anonymous.get("/console/flags")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/sign-in?next=")
        assert anonymous.get("/console/exports/flags.csv").status_code == 303
        form = anonymous.get("/console/sign-in")
        wrong = anonymous.post("/console/sign-in", data={"csrf_token": csrf_of(form), "username": "sup",
                                                         "password": "wrong"})
        assert wrong.status_code == 401 and "sign-in-error" in wrong.text
        ok = anonymous.post("/console/sign-in", data={"csrf_token": csrf_of(form), "username": "sup",
                                                      "password": helpers.factories.PASSWORD,
                                                      "next": "https://evil.example/"})
        assert ok.status_code == 303 and ok.headers["location"] == "/console/todo"  # no open redirect; 我的待办
        cookie = next(h for h in ok.headers.get_list("set-cookie") if h.startswith("bedcheck_session="))
        assert "HttpOnly" in cookie and "Max-Age=28800" in cookie and "SameSite=lax" in cookie
        dashboard = anonymous.get("/console/dashboard")
        assert dashboard.status_code == 200 and "content-security-policy" in dashboard.headers


def test_an_expired_session_goes_back_to_sign_in(county) -> None:
    server, _, _ = county

    class Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 9 * 3600  # older than user_token_ttl_s (8 h)

    old = URLSafeTimedSerializer(DEV_SECRET, salt="user-token", signer=Past).dumps({"uid": 1})
    with httpx.Client(base_url=server.url, cookies={"bedcheck_session": old}) as client:
        page = client.get("/console/dashboard")
        assert page.status_code == 303 and "expired=1" in page.headers["location"]
        assert client.get("/api/v1/flags").status_code == 401


def test_signing_out_ends_the_session_and_the_users_api_tokens_even_if_the_cookie_is_kept(county) -> None:
    server, _, _ = county
    with httpx.Client(base_url=server.url) as api:
        token = api.post("/api/v1/auth/token", json={"username": "sup", "password": helpers.factories.PASSWORD})
        bearer = {"authorization": f"Bearer {token.raise_for_status().json()['access_token']}"}
        assert api.get("/api/v1/flags", headers=bearer).status_code == 200
    with closing(sign_in(server.url, "sup")) as browser:
        kept = browser.cookies["bedcheck_session"]
        assert browser.get("/console/dashboard").status_code == 200
        out = browser.post("/console/sign-out", data={"csrf_token": csrf_of(browser.get("/console/dashboard"))})
        assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    # A copy of the cookie taken before sign-out (another tab, a stolen copy) no longer works, nor the token.
    with httpx.Client(base_url=server.url, cookies={"bedcheck_session": kept}) as replay:
        page = replay.get("/console/dashboard")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/sign-in")
        assert replay.get("/api/v1/flags").status_code == 401
    with httpx.Client(base_url=server.url) as api:
        refused = api.get("/api/v1/flags", headers=bearer)
        assert refused.status_code == 401 and "signed out" in refused.text
    # Signing in again, in the same second, works.
    with closing(sign_in(server.url, "sup")) as again:
        assert again.get("/console/dashboard").status_code == 200


def test_forms_without_a_valid_csrf_token_are_refused(county) -> None:
    server, _, flags = county
    flag_id = next(iter(flags.values()))
    with closing(sign_in(server.url, "sup")) as sup:
        for token in (None, "forged", csrf_of(sup.get("/console/sign-in")) + "x"):
            data = {"to": "dismissed", "reason": "false_match"} | ({"csrf_token": token} if token else {})
            refused = sup.post(f"/console/flags/{flag_id}/review", data=data)
            assert refused.status_code == 403 and "csrf" in refused.text.lower()
        other_browser = httpx.Client(base_url=server.url)
        stolen_token = csrf_of(other_browser.get("/console/sign-in"))  # valid signature, other browser's cookie
        other_browser.close()
        refused = sup.post(f"/console/flags/{flag_id}/review", data={"csrf_token": stolen_token, "to": "dismissed",
                                                                      "reason": "false_match"})
        assert refused.status_code == 403
        # A cross-site form can only send text/plain to the JSON API, without the CSRF header: refused.
        plain = sup.post(f"/api/v1/flags/{flag_id}/transition", content='{"to": "dismissed", "reason": "x"}',
                         headers={"content-type": "text/plain"})
        assert plain.status_code == 403 and plain.json()["code"] == "csrf_failed"
        assert sup.get(f"/api/v1/flags/{flag_id}").json()["status"] == "open"


def test_hospital_staff_cannot_reach_another_hospitals_flags_in_pages_files_or_api(county) -> None:
    server, world, flags = county
    h1, h2 = world.hospital_ids
    theirs = flags[(h2, "impersonated")]
    with closing(sign_in(server.url, "staff1")) as staff:
        queue = staff.get("/console/flags", params={"status": "all"})
        assert queue.status_code == 200 and f'data-flag-id="{theirs}"' not in queue.text
        assert f'data-flag-id="{flags[(h1, "impersonated")]}"' in queue.text
        for path in (f"/console/flags/{theirs}", f"/console/flags/{theirs}/crop.jpg",
                     f"/console/flags/{theirs}/enrolled.jpg", f"/console/exports/flags/{theirs}/evidence.zip",
                     f"/console/flags?hospital_id={h2}", f"/api/v1/flags/{theirs}",
                     f"/api/v1/flags?hospital_id={h2}"):
            assert staff.get(path).status_code == 404, path
        api = staff.get("/api/v1/flags").json()
        assert {f["hospital_id"] for f in api["items"]} == {h1}
        exported = staff.get("/console/exports/flags.csv").text
        rows = exported.strip().splitlines()[1:-1]  # the last line is the totals row
        assert rows and all(line.split(",")[3] == "Hospital 1" for line in rows)
        assert staff.get("/console/launch").status_code == 403
        form = staff.get(f"/console/flags/{flags[(h1, 'absent')]}")
        review = staff.post(f"/console/flags/{flags[(h1, 'absent')]}/review",
                            data={"csrf_token": csrf_of(form), "to": "dismissed", "reason": "false_match"})
        assert review.status_code == 403


def _review(client: httpx.Client, flag_id: int, to: str, reason: str, comment: str = "") -> httpx.Response:
    page = client.get(f"/console/flags/{flag_id}")
    return client.post(f"/console/flags/{flag_id}/review", data={"csrf_token": csrf_of(page), "to": to,
                                                                 "reason": reason, "comment": comment})


def test_two_level_review_is_role_checked_and_audited(county, engine) -> None:
    server, world, flags = county
    flag_id = flags[(world.hospital_ids[0], "impersonated")]
    with closing(sign_in(server.url, "rev")) as rev, closing(sign_in(server.url, "sup")) as sup:
        page = rev.get(f"/console/flags/{flag_id}")
        assert 'id="captured-crop"' in page.text and 'id="enrolled-photo"' in page.text
        crop_type = rev.get(f"/console/flags/{flag_id}/crop.jpg").headers["content-type"]
        assert crop_type in ("image/jpeg", "image/png")  # synthetic crops are PNG
        assert _review(rev, flag_id, "first_reviewed", "other").status_code == 422  # 'other' needs a comment
        assert _review(rev, flag_id, "first_reviewed", "face_mismatch", "不是本人").status_code == 303
        assert _review(rev, flag_id, "confirmed", "evidence_clear").status_code == 403  # final review: supervisors
        assert _review(sup, flag_id, "confirmed", "evidence_clear").status_code == 303
        assert _review(sup, flag_id, "dismissed", "false_match").status_code == 409
        detail = sup.get(f"/console/flags/{flag_id}").text
        assert "不是本人" in detail and 'data-status="confirmed"' in detail
    with Session(engine) as db:
        actions = list(db.exec(select(AuditRecord.action).where(AuditRecord.object_type == "flag",
                                                                AuditRecord.object_id == str(flag_id))
                               .order_by(col(AuditRecord.seq))))
        assert actions.count("flag.transition") == 2
        _, problems = verify(db)
        assert problems == []


def _appeal(client: httpx.Client, flag_id: int, statement: str, files: list[tuple[str, bytes]]) -> httpx.Response:
    page = client.get("/console/dashboard")  # any page of this session carries its CSRF token
    return client.post(f"/console/flags/{flag_id}/appeal", data={"csrf_token": csrf_of(page), "statement": statement},
                       files=[("attachments", (name, content)) for name, content in files])


def test_appeal_attachments_are_checked_stored_with_hashes_and_scoped(county) -> None:
    server, world, flags = county
    flag_id = flags[(world.hospital_ids[0], "absent")]
    pdf = b"%PDF-1.4\n% surgery record\n"
    with closing(sign_in(server.url, "rev")) as rev:
        assert _review(rev, flag_id, "first_reviewed", "bed_empty").status_code == 303
    with closing(sign_in(server.url, "staff1")) as staff, closing(sign_in(server.url, "staff2")) as other:
        assert _appeal(staff, flag_id, "  ", []).status_code == 422
        assert _appeal(staff, flag_id, "x", [("a.exe", b"MZ\x90\x00")]).status_code == 422
        assert _appeal(staff, flag_id, "x", [("big.pdf", b"%PDF-" + b"0" * (2 * 1024 * 1024))]).status_code == 413
        assert _appeal(staff, flag_id, "x", [(f"{i}.pdf", pdf) for i in range(6)]).status_code == 422
        ok = _appeal(staff, flag_id, "病人当时在做CT检查", [("../../etc/检查单.pdf", pdf)])
        assert ok.status_code == 303
        detail = staff.get(f"/console/flags/{flag_id}").text
        assert "病人当时在做CT检查" in detail and "检查单.pdf" in detail and 'data-status="appealed"' in detail
        link = helpers.re.search(r'href="(/console/attachments/\d+)"', detail).group(1)
        download = staff.get(link)
        assert download.content == pdf and download.headers["content-type"] == "application/pdf"
        assert "attachment;" in download.headers["content-disposition"]
        assert other.get(link).status_code == 404
        assert _appeal(other, flag_id, "not ours", []).status_code == 404
