"""Pages beyond the must-show: launch by hospitals with validation, dashboard, languages and texts."""

from __future__ import annotations

from contextlib import closing

import pytest
from sqlmodel import Session

from models.verdicts import FlagKind, Verdict
from server.accounts.tables import Role
from server.campaigns.tables import CampaignKind, CampaignStatus
from server.console.i18n import TEXT
from server.console.service import REVIEW_REASONS
from server.devices.tables import Device
from server.flags.tables import FlagStatus
from tests.console.helpers import csrf_of, sign_in


@pytest.mark.parametrize("values", [Verdict, FlagKind, FlagStatus, Role, CampaignKind, CampaignStatus])
def test_every_value_shown_on_a_page_has_chinese_and_english_text(values) -> None:
    assert [v.value for v in values if v.value not in TEXT] == []


def test_every_review_reason_has_text() -> None:
    assert [r for r in REVIEW_REASONS if f"reason_{r}" not in TEXT] == []


def _launch(client, **data):
    token = csrf_of(client.get("/console/launch"))
    return client.post("/console/launch", data={"csrf_token": token, **data})


def _confirmed(client, page) -> object:
    """Posts the confirmation form of a launch's second step exactly as the page holds it."""
    import re

    form = page.text.split('id="launch-confirm-form"', 1)[1].split("</form>", 1)[0]
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', form):
        fields.setdefault(name, []).append(value)
    return client.post("/console/launch", data=fields)


def test_launch_by_hospitals_validates_and_shows_the_campaign_on_the_dashboard(county, engine) -> None:
    server, world, _ = county
    h1, _h2 = world.hospital_ids
    with Session(engine) as db:
        device = db.get(Device, 1)
        assert device is not None and device.last_seen_at is not None
    with closing(sign_in(server.url, "sup")) as sup:
        assert _launch(sup, scope="hospitals").status_code == 422
        assert _launch(sup, scope="hospitals", hospitals="99999", deadline_minutes="5").status_code == 422
        assert _launch(sup, scope="county", county="Nowhere").status_code == 422
        assert _launch(sup, scope="county", county=world.county, deadline_minutes="0").status_code == 422
        launched = _confirmed(sup, _launch(sup, scope="hospitals", hospitals=str(h1), deadline_minutes="5"))
        assert launched.status_code == 303
        board = sup.get(launched.headers["location"])
        assert 'data-status="running"' in board.text and f'data-hospital-id="{h1}"' in board.text
        progress = sup.get(f"/console/campaigns/{launched.headers['location'].split('=')[1]}/progress").json()
        assert progress["total"] == 3 and progress["counts"]["pending"] == 3
        english = sup.get("/console/dashboard", params={"lang": "en"})
        assert "Verification rate" in english.text and english.cookies.get("bedcheck_lang") == "en"
        assert "在院病人核查率" not in sup.get("/console/dashboard").text  # the choice is remembered


def test_devices_not_heard_from_show_as_offline_to_their_own_hospital_only(county, engine) -> None:
    server, world, _ = county
    h1, h2 = world.hospital_ids
    with Session(engine) as db:
        db.add(Device(hospital_id=h2, ward_id=world.ward_ids[1], name="silent-tablet", token_hash="0" * 64))
        db.commit()
    with closing(sign_in(server.url, "sup")) as sup, closing(sign_in(server.url, "staff1")) as staff:
        assert "silent-tablet" in sup.get("/console/dashboard").text
        assert "silent-tablet" not in staff.get("/console/dashboard").text


def test_no_text_key_is_defined_twice() -> None:
    import ast
    from collections import Counter
    from pathlib import Path

    import server.console.i18n as i18n

    tree = ast.parse(Path(i18n.__file__).read_text())
    table = next(n.value for n in ast.walk(tree)
                 if isinstance(n, ast.AnnAssign) and getattr(n.target, "id", "") == "TEXT")
    counts = Counter(k.value for k in table.keys if isinstance(k, ast.Constant))
    assert [k for k, n in counts.items() if n > 1] == []


def test_every_liveness_word_a_flag_can_show_has_chinese_text() -> None:
    """Liveness reports, their reasons and the evidence check's liveness findings are shown in words."""
    from models.faces.liveness.actions import Action, CannotTakePart, LivenessMethod
    from models.faces.liveness.planarity import Planarity
    from server.console.format import Formatter
    from server.console.i18n import translator

    words = [*(a.value for a in Action), *(c.value for c in CannotTakePart), *(m.value for m in LivenessMethod)]
    words += [f"planarity_{p.value}" for p in Planarity]
    reasons = ["no_challenge", "single_frame", "no_face", "too_few_frames", "not_done", "wrong_action",
               "planar_motion", "no_3d_motion", "no_sign_of_life", "liveness_not_established", "cannot_take_part"]
    words += [f"live_reason_{r}" for r in reasons]
    # flag details of liveness_mismatch (server/evidence/liveness.py) and the verdict reasons (checks/policy.py)
    words += ["no_liveness_evidence", "challenge_differs", "no_key_frames", "key_frame_unreadable",
              "key_frames_disagree", "unknown_method", "no_face_in_key_frames", "no_neutral_frame", "no_key_frame",
              "not_shown", "cannot_take_part", "liveness_not_established", "detail_method", "detail_asked",
              "detail_reported", "detail_found"]
    assert [w for w in words if w not in TEXT] == []
    shown = Formatter("zh", "Asia/Shanghai", translator("zh")).liveness({
        "is_live": False, "score": 0.3, "method": "challenge", "planarity": "planar", "depth": 0.05,
        "actions": [{"action": "blink", "passed": True, "time_s": 1.2}, {"action": "turn_left", "passed": False}],
        "reasons": ["not_done:turn_left", "wrong_action:look_up", "planar_motion"]})
    assert not any(code in shown for code in ("turn_left", "look_up", "planar", "not_done", "challenge", "blink"))


def test_the_fused_probes_frames_are_shown_in_words_in_both_languages() -> None:
    from server.console.format import Formatter
    from server.console.i18n import translator

    frames = [{"role": "crop", "distance": 0.71, "used": True, "reason": "used"},
              {"role": "neutral", "distance": 0.684, "used": True, "reason": "used"},
              {"role": "blink", "distance": 1.31, "used": False, "reason": "disagrees"},
              {"role": "turn_left", "distance": None, "used": False, "reason": "quality"},
              {"role": "motion", "distance": None, "used": False, "reason": "no_face"}]
    zh = Formatter("zh", "Asia/Shanghai", translator("zh")).face_frames(frames)
    assert zh == ("合并 2 帧比对：人脸截图 0.710、正脸 0.684；未用：眨眼（与截图不像同一人）、"
                  "向画面左侧转头（质量不合格）、动作帧（未见人脸）")
    en = Formatter("en", "Asia/Shanghai", translator("en")).face_frames(frames)
    assert en.startswith("2 frames fused: face crop 0.710, neutral face 0.684; not used: blink (not the crop's face)")
    assert not any(code in zh for code in ("turn_left", "disagrees", "quality", "no_face", "crop", "motion"))
    assert not any(code in en for code in ("turn_left", "disagrees", "no_face", "motion,"))
    assert Formatter("zh", "Asia/Shanghai", translator("zh")).face_frames([]) == "—"
