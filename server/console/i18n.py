"""Interface text: Simplified Chinese first, English on request (the `bedcheck_lang` cookie)."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

# key: (中文, English). Enum values (verdicts, flag kinds, statuses, roles, reasons) are keys too.
TEXT: dict[str, tuple[str, str]] = {
    "app_name": ("医保住院床位人脸核查", "bedcheck: inpatient bed checks"),
    "sign_in": ("登录", "Sign in"), "sign_out": ("退出", "Sign out"),
    "username": ("用户名", "Username"), "password": ("密码", "Password"),
    "wrong_password": ("用户名或密码错误", "Wrong username or password"),
    "session_expired": ("登录已过期，请重新登录", "Your session has expired; sign in again"),
    "dashboard": ("总览", "Dashboard"), "launch": ("发起飞检", "Launch spot check"),
    "flags": ("疑点队列", "Flag queue"), "campaigns": ("核查任务", "Campaigns"),
    "recent_campaigns": ("最近的核查", "Recent campaigns"), "offline_devices": ("离线设备", "Offline devices"),
    "no_running": ("当前没有进行中的核查", "No spot check is running"),
    "progress": ("进度", "Progress"), "verification_rate": ("在院病人核查率", "Verification rate"),
    "hospital": ("医院", "Hospital"), "county": ("区县", "County"), "ward": ("病区", "Ward"),
    "bed": ("床位", "Bed"), "device": ("设备", "Device"), "last_seen": ("最后在线", "Last seen"),
    "never": ("从未", "never"), "done": ("已完成", "Done"), "total": ("总数", "Total"),
    "status": ("状态", "Status"), "kind": ("类型", "Kind"), "verdict": ("结论", "Verdict"),
    "created_at": ("创建时间", "Created"), "deadline": ("截止时间", "Deadline"),
    "deadline_minutes": ("时限（分钟）", "Deadline (minutes)"), "all": ("全部", "All"),
    "scope": ("范围", "Scope"), "scope_county": ("按区县", "A county"), "scope_hospitals": ("按医院", "Hospitals"),
    "launch_submit": ("一键发起", "Launch"), "filter": ("筛选", "Filter"), "campaign": ("核查批次", "Campaign"),
    "previous": ("上一页", "Previous"), "next": ("下一页", "Next"), "page": ("页", "page"),
    "results": ("条", "results"), "no_flags": ("没有符合条件的疑点", "No flags match"),
    "flag": ("疑点", "Flag"), "enrolled_photo": ("登记照片", "Enrolled photo"),
    "captured_crop": ("现场抓拍", "Captured face"), "no_image": ("无图像", "No image"),
    "distance": ("比对距离", "Distance"), "threshold": ("阈值", "Threshold"), "liveness": ("活体检测", "Liveness"),
    "captured_at": ("抓拍时间", "Captured at"), "received_at": ("接收时间", "Received at"),
    "nonce": ("任务随机码", "Nonce"), "evidence_hash": ("证据哈希", "Evidence hash"),
    "engine_version": ("算法版本", "Engine version"), "no_result": ("设备未上报结果", "No result from a device"),
    "history": ("处理记录", "History"), "reason": ("理由", "Reason"), "comment": ("说明", "Comment"),
    "actor": ("操作人", "By"), "first_review": ("初审", "First review"), "final_review": ("终审", "Final review"),
    "decision": ("处理结果", "Decision"), "submit": ("提交", "Submit"),
    "appeal": ("申诉", "Appeal"), "appeals": ("申诉材料", "Appeals"), "statement": ("申诉说明", "Statement"),
    "attachments": ("附件（JPEG/PNG/PDF，每个不超过 2 MB，最多 5 个）",
                    "Attachments (JPEG/PNG/PDF, 2 MB each, at most 5)"),
    "exports": ("导出", "Export"), "export_csv": ("导出 CSV", "CSV"), "export_xlsx": ("导出 Excel", "Excel"),
    "evidence_zip": ("证据包", "Evidence package"), "summary": ("汇总", "Summary"),
    "error": ("出错了", "Something went wrong"), "back": ("返回", "Back"),
    "not_found": ("未找到，或无权查看", "Not found, or not yours to see"),
    "forbidden": ("无权进行此操作", "You may not do this"),
    "csrf_failed": ("表单已失效，请刷新页面后重试", "The form expired; reload the page and try again"),
    "language": ("English", "中文"), "signed_in_as": ("当前用户", "Signed in as"),
    "counts_by_verdict": ("各结论数量", "Counts per verdict"), "chart": ("图表", "Chart"),
    "seconds_to_complete": ("完成用时（秒）", "Seconds to complete"), "tasks": ("任务数", "Tasks"),
    "no_actions": ("当前状态下您没有可执行的操作", "Nothing for you to do on this flag now"),
    "details": ("详情", "Details"), "insured_person": ("参保人", "Insured person"),
    # verdicts
    "pending": ("待核查", "pending"), "verified": ("核查通过", "verified"), "absent": ("不在床（疑似挂床）", "absent"),
    "impersonated": ("人脸不符（疑似冒名）", "impersonated"), "spoof": ("活体未通过", "spoof"),
    "unrecognised": ("无法识别", "unrecognised"), "exempt": ("豁免", "exempt"), "overdue": ("超时未答", "overdue"),
    # flag kinds beyond verdicts
    "late": ("逾期上报", "late"), "device_offline": ("设备离线", "device offline"),
    "duplicate_admission": ("重复住院（叠床）", "duplicate admission"),
    "duplicate_identity": ("一人多号", "duplicate identity"), "tampered_evidence": ("证据被篡改", "tampered evidence"),
    "replayed_photo": ("照片重放", "replayed photo"), "cross_hospital_face": ("跨院同脸", "same face in two hospitals"),
    # flag statuses
    "open": ("待初审", "open"), "first_reviewed": ("待终审", "first reviewed"), "confirmed": ("已确认", "confirmed"),
    "dismissed": ("已排除", "dismissed"), "appealed": ("申诉中", "appealed"),
    # campaign
    "running": ("进行中", "running"), "completed": ("已完成", "completed"),
    "spot_check": ("飞检", "spot check"), "roll_call": ("例行点名", "roll-call"), "adhoc": ("临时核查", "ad hoc"),
    # roles
    "admin": ("管理员", "administrator"), "supervisor": ("医保监管", "supervisor"), "reviewer": ("复核员", "reviewer"),
    "hospital_staff": ("医院医保科", "hospital staff"),
    # transition verbs
    "to_first_reviewed": ("初审确认疑点，提交终审", "First review: suspicious, send to final review"),
    "to_confirmed": ("终审确认违规", "Final review: confirm"), "to_dismissed": ("排除疑点", "Dismiss"),
    "to_appealed": ("提出申诉", "Appeal"),
    # review reasons
    "reason_evidence_clear": ("证据清楚", "Evidence is clear"),
    "reason_face_mismatch": ("人脸明显不符", "Faces clearly differ"),
    "reason_bed_empty": ("核查时床位无人", "Bed was empty at the check"),
    "reason_false_match": ("比对误判", "False match by the machine"),
    "reason_valid_exemption": ("有正当理由（检查、手术等）", "Valid reason (examination, surgery...)"),
    "reason_device_fault": ("设备故障", "Device fault"),
    "reason_appeal_accepted": ("申诉成立", "Appeal accepted"),
    "reason_appeal_rejected": ("申诉不成立", "Appeal rejected"),
    "reason_other": ("其他", "Other"),
}


def translator(language: str) -> Callable[[str], str]:
    """t(key) in this language; an unknown key shows itself, so a missing text is visible, not an error."""
    index = 1 if language == "en" else 0

    def t(key: str) -> str:
        pair = TEXT.get(str(key))
        return pair[index] if pair else str(key)

    return t
