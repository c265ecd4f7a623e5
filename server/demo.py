"""`bedcheck demo`: a simulated county checked on one command, on the embedded database by default."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from server import lifecycle
from server.console.i18n import translator
from server.evidence.workers import default_processes
from server.settings import ServerSettings
from server.simulation.county import CountySpec
from server.simulation.real_faces import default_faces_dir
from server.simulation.run import SimulationOptions, simulate

console = Console(stderr=True)
DEMO_USERS = [("supervisor", "supervisor", None), ("reviewer", "reviewer", None), ("hospital1", "hospital_staff", 0)]
DEMO_PORT = 8000
DEMO_PASSWORD = "demo-password"  # demo only: the demo database is rebuilt on every run
t = translator("zh")


def demo_database_url(settings: ServerSettings) -> str:
    if settings.database_url:
        return settings.database_url
    path = (settings.data_dir / "demo.db").resolve()
    for suffix in ("", "-wal", "-shm", ".audit-checkpoints.jsonl"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def run_demo(*, serve: bool, as_json: bool, hospitals: int, inpatients: int, deadline_s: int, seed: int,
             port: int = DEMO_PORT, offline_s: float = 5.0, review: bool = True) -> None:
    lifecycle.stop_on_signals()  # SIGTERM stops the server and devices as Ctrl-C does
    settings = ServerSettings()
    url = demo_database_url(settings)
    spec = CountySpec(hospitals=hospitals, public_hospitals=min(hospitals, round(hospitals * 28 / 46)),
                      inpatients=inpatients, seed=seed)
    console.print(f"[bold]bedcheck 演示[/]：模拟{spec.name} {spec.hospitals} 家定点医院、{spec.inpatients} 名住院病人，"
                  f"一键飞检，时限 {deadline_s} 秒；数据库 {url.split('@')[-1]}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=as_json) as bar:
        task = bar.add_task("正在建立模拟县（医院、病区、床位、参保人与登记人脸）", total=None)

        def on_progress(p) -> None:  # type: ignore[no-untyped-def]
            counts = "，".join(f"{t(k)} {v}" for k, v in p.counts.items() if v and k != "pending")
            bar.update(task, total=p.total, completed=p.done,
                       description=f"飞检进行中：{counts}" if counts else "任务已下发，等待病区设备应答")

        def report(summary: dict, base_url: str | None = None) -> None:  # type: ignore[type-arg]
            bar.stop()
            if as_json:
                print(json.dumps(summary, ensure_ascii=False))  # noqa: T201  (the command's one JSON answer)
            else:
                _print_summary(summary, deadline_s)
            if base_url is not None:
                _serve(url, base_url)

        faces_dir = default_faces_dir()
        if faces_dir is not None:
            bar.console.print(f"部分床位使用真实人脸图像（{faces_dir}）")
        options = SimulationOptions(deadline_s=deadline_s, faces_dir=faces_dir, port=port if serve else 0,
                                    offline_delay_s=offline_s, sweep_interval_s=1.0 if serve else 0.5, review=review,
                                    # The evidence check in worker processes, one per core, not in a web process.
                                    evidence_workers=default_processes())
        # Serving, the simulated ward devices keep running behind the console: a spot check launched from it
        # is answered like the first one.
        summary = simulate(url, spec, options, on_progress, while_serving=report if serve else None)
    if not serve:
        report(summary)


# The summary's figures in the words a bureau reads (the JSON answer, --json, keeps its keys).
SUMMARY_ROWS = (("hospitals", "定点医院（家）"), ("wards", "病区（个）"), ("inpatients", "在院病人（人）"),
                ("offline_wards", "设备离线的病区（个）"), ("real_face_beds", "使用真实人脸图像的床位"),
                ("seconds_to_complete", "全部床位核查完毕用时（秒）"), ("results_per_second", "每秒处理结果数"),
                ("verification_rate", "在院病人核查率"), ("aggregate_query_ms", "进度统计查询用时（毫秒）"),
                ("verified_flagged_for_place", "人脸通过但实地不符（疑似带出病区）"))
FOUND = {"bed_hanging": "挂床（不在床、超时未答）", "impersonation": "冒名住院", "spoof": "照片、屏幕翻拍",
         "ineligible": "无参保资格", "place": "实地不符（带出病区）"}


def _print_summary(summary: dict, deadline_s: int) -> None:  # type: ignore[type-arg]
    table = Table(title="飞检结果", show_header=False)
    for key, label in SUMMARY_ROWS:
        if key in summary:
            value = summary[key]
            table.add_row(label, f"{value:.1%}" if key == "verification_rate" and isinstance(value, float)
                          else str(value))
    for verdict, count in summary["verdicts"].items():
        table.add_row(f"结论：{t(verdict)}", str(count))
    for kind in summary["precision"]:
        table.add_row(f"{FOUND.get(kind, t(kind))}（模拟设定 {summary['seeded'][kind]} 例）",
                      f"查准率 {summary['precision'][kind]:.1%}，查全率 {summary['recall'][kind]:.1%}")
    for kind, n in summary.get("confirmed", {}).items():
        table.add_row(f"终审确认：{FOUND.get(kind, t(kind))}", f"{n}（模拟设定 {summary['confirmed_seeded'][kind]}）")
    out = Console()
    if "funds" in summary:  # the simulated reviewers decided every flag (not with --no-review)
        funds = summary["funds"]
        table.add_row("拒付基金", f"{funds['refused']}（按模拟设定应为 {funds['expected_refused']}）")
    out.print(table)
    overdue = int(summary["verdicts"].get("overdue", 0))
    seconds = summary.get("seconds_to_complete")
    if overdue and isinstance(seconds, int | float) and seconds >= deadline_s - 1:
        # A slow or busy machine: beds whose devices had not answered by the deadline are 超时未答, which also
        # lowers the bed-hanging precision above. Say so instead of leaving a bare percentage.
        out.print(f"说明：{overdue} 张床位的设备在 {deadline_s} 秒时限内没有应答，按“超时未答”记录（设备离线的"
                  f"病区之外，多因本机较慢或负载较高）；这些床位也计入上面的挂床查准率。可用 --deadline-s 放宽时限。")
    if "bed_hanging_confirmed" in summary and "funds" in summary:
        # The line a bureau writes in its report (确认挂床 N 人次，拒付违规基金 ¥X), as the period report says it.
        from server.funds.money import format_yuan

        out.print("[bold]" + t("summary_line").format(n=summary["bed_hanging_confirmed"],
                                                      yuan=format_yuan(summary["funds"]["report_refused_fen"])) + "[/]")


def _serve(url: str, base_url: str) -> None:
    """Demo users, then wait for Ctrl-C while the server and the simulated devices run."""
    from server.accounts.service import create_user
    from server.accounts.tables import Role
    from server.db import db_scope, make_engine
    from server.hospitals.tables import Hospital

    engine = make_engine(url)
    with db_scope(engine) as db:
        first_hospital = db.exec(Hospital.__table__.select().limit(1)).first()  # type: ignore[attr-defined]
        for username, role, _ in DEMO_USERS:
            create_user(db, username=username, password=DEMO_PASSWORD, role=Role(role),
                        hospital_id=first_hospital.id if role == "hospital_staff" else None)
    engine.dispose()
    console.print(f"\n管理控制台：[bold]{base_url}/console[/]   接口文档：{base_url}/docs")
    for username, role, _ in DEMO_USERS:
        console.print(f"  用户名 [bold]{username}[/]，密码 {DEMO_PASSWORD}（{t(role)}）")
    console.print("模拟的病区设备仍在运行，会应答在控制台发起的飞检。按 Ctrl-C 结束演示。")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("正在停止演示")
