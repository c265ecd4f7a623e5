"""Statistics and period report pages, their Excel and print versions, and the leave page, within scope."""

from __future__ import annotations

import io
import re
from contextlib import closing
from datetime import datetime, timedelta

from openpyxl import load_workbook

from server.localtime import LOCAL_TZ
from tests.console.helpers import csrf_of, sign_in

RAW = re.compile(r">\s*(absent|impersonated|verified|on_leave|ineligible|confirmed|first_reviewed)\s*<")


def test_statistics_and_report_pages_show_the_county_in_chinese_and_staff_only_their_hospital(county) -> None:
    server, world, flags = county
    h1, h2 = world.hospital_ids
    today = datetime.now(LOCAL_TZ).date().isoformat()
    with closing(sign_in(server.url, "sup")) as sup, closing(sign_in(server.url, "staff2")) as staff:
        page = sup.get("/console/statistics")
        assert page.status_code == 200 and "统计分析" in page.text and "<svg" in page.text
        assert 'id="total-checks">6<' in page.text and not RAW.search(page.text)
        assert page.headers["server-timing"].startswith("app;dur=")
        report = sup.get("/console/reports", params={"from": today, "to": today, "county": world.county})
        assert report.status_code == 200 and "季度评析" in report.text
        assert "确认挂床 0 人次，拒付违规基金 ¥0.00" in report.text
        assert report.text.count("data-hospital-id=") == 2 and not RAW.search(report.text)
        printable = sup.get("/console/reports/print", params={"from": today, "to": today})
        assert printable.status_code == 200 and "print.css" in printable.text and 'class="top"' not in printable.text
        body = sup.get("/console/reports/report.xlsx", params={"from": today, "to": today}).content
        workbook = load_workbook(io.BytesIO(body))
        assert workbook.sheetnames == ["分医院", "按月", "按季度"]
        rows = list(workbook["分医院"].iter_rows(values_only=True))
        assert rows[0][:3] == ("排名", "医院", "核查住院人数") and len(rows) == 1 + 2 + 1
        assert rows[-1][3] == 6  # the total's checks
        own = staff.get("/console/reports", params={"from": today, "to": today})
        assert own.text.count("data-hospital-id=") == 1 and f'data-hospital-id="{h2}"' in own.text
        assert staff.get("/console/statistics", params={"hospital_id": h1}).status_code == 404
        bad = sup.get("/console/reports", params={"from": "yesterday"})
        assert bad.status_code == 422
        backwards = sup.get("/console/reports", params={"from": today, "to": "2020-01-01"})
        assert backwards.status_code == 422


def test_hospital_staff_register_a_leave_and_its_return_in_the_console(county) -> None:
    server, world, flags = county
    start = datetime.now(LOCAL_TZ) + timedelta(minutes=10)
    with closing(sign_in(server.url, "staff1")) as staff, closing(sign_in(server.url, "rev")) as rev:
        form = staff.get("/console/leaves")
        assert form.status_code == 200 and "登记请假" in form.text
        posted = staff.post("/console/leaves", data={
            "csrf_token": csrf_of(form), "his_admission_no": "A0away", "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"), "reason": "外出检查",
            "approved_by_doctor": "王医生", "approved_by_insurance_officer": "李科长"})
        assert posted.status_code == 303
        listed = staff.get("/console/leaves")
        assert "外出检查" in listed.text and start.strftime("%Y-%m-%d %H:%M") in listed.text
        other = staff.post("/console/leaves", data={
            "csrf_token": csrf_of(listed), "his_admission_no": "A1away", "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"), "reason": "x",
            "approved_by_doctor": "a", "approved_by_insurance_officer": "b"})
        # Another hospital's admission number: refused on the form, beside it, with what was typed kept.
        assert other.status_code == 422 and 'id="leave-error"' in other.text and "住院号" in other.text
        assert 'value="A1away"' in other.text and 'value="a"' in other.text
        listed = staff.get("/console/leaves")
        assert "患者away" in listed.text and "record-return" in listed.text  # the patient's name; the ward records
        assert "外出检查" not in staff.get("/console/leaves", params={"q": "nobody-such"}).text
        assert "外出检查" in staff.get("/console/leaves", params={"q": "away"}).text
        assert rev.get("/console/leaves").status_code == 403
    with closing(sign_in(server.url, "sup")) as sup:
        page = sup.get("/console/leaves").text
        assert "外出检查" in page and "record-return" not in page  # the bureau reads; the hospital records
