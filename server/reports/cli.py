"""`bedcheck report` (the period report on the command line, optionally as Excel) and `bedcheck agreement`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

out = Console()
err = Console(stderr=True)
agreement = typer.Typer(no_args_is_help=True, help="Service agreement rules per region (money, leave).")


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]{name}: not a date (YYYY-MM-DD): {value!r}[/]")
        raise typer.Exit(2) from None


def report(
    county: Annotated[str, typer.Option("--county", help="County name")],
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (local)")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (local), included")],
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="Also write the Excel workbook here")] = None,
    lang: Annotated[str, typer.Option(help="zh or en")] = "zh",
) -> None:
    """The period report (季度评析) of a county: per hospital and in total, ranked, with money."""
    from models.errors import BedcheckError
    from server.accounts.tables import Role, UserAccount
    from server.admin_cli import _engine
    from server.console.i18n import translator
    from server.db import db_scope, utcnow
    from server.funds.money import format_yuan
    from server.reports import rollup, service
    from server.reports.xlsx import report_xlsx

    t = translator(lang)
    bureau = UserAccount(username="cli", password_hash="", role=Role.SUPERVISOR)
    try:
        period = service.Period(_day(start, "--from"), _day(end, "--to"))
        with db_scope(_engine()) as db:
            rollup.refresh(db, now=utcnow())
            result = service.build(db, bureau, period, county=county)
    except BedcheckError as e:
        err.print(f"[red]{e.code.value}: {e.message}[/]")
        raise typer.Exit(2) from None
    table = Table(title=f"{result.scope_name} {t('report_title')} {period.start} — {period.end}")
    for name in ("rank", "hospital", "inpatients_checked", "checks_done", "pass_rate", "flags_total", "confirmed",
                 "appealed_count", "upheld_count", "refused_funds", "deductions"):
        table.add_column(t(name), justify="left" if name == "hospital" else "right")
    for row in [*service.ranked(result), result.total]:
        table.add_row(str(row.rank or ""), row.name if row.hospital_id else t("county_total"),
                      str(row.inpatients or 0), str(row.checks),
                      f"{row.pass_rate:.2%}" if row.pass_rate is not None else "—", str(row.flag_total),
                      str(row.confirmed), str(row.appealed), str(row.upheld), format_yuan(row.refused_fen),
                      format_yuan(row.deduction_fen))
    out.print(table)
    out.print(t("summary_line").replace("{n}", str(result.total.bed_hanging_confirmed))
              .replace("{yuan}", format_yuan(result.total.refused_fen)))
    if xlsx is not None:
        xlsx.write_bytes(report_xlsx(result, t, full=True))
        out.print(f"{xlsx}")


@agreement.command("set")
def set_agreement(
    region: Annotated[str, typer.Argument(help="Region name (county, city or province)")],
    counted_days: Annotated[str | None, typer.Option(help="since_last_verified or whole_admission")] = None,
    multiple: Annotated[float | None, typer.Option(help="Deduction multiple of the refused amount")] = None,
    kind_multiple: Annotated[list[str] | None, typer.Option(help="Per flag kind, e.g. impersonated=10")] = None,
    overnight: Annotated[bool | None, typer.Option("--overnight/--no-overnight",
                                                  help="Whether a leave may cover a night")] = None,
) -> None:
    """Set the money and leave rules of a region's service agreement (audited)."""
    from models.errors import BedcheckError
    from server.admin_cli import _engine
    from server.db import db_scope
    from server.funds import rules
    from server.funds.tables import CountedDays

    try:
        kinds = {k: float(v) for k, _, v in (item.partition("=") for item in kind_multiple or [])}
    except ValueError:
        err.print("[red]--kind-multiple takes KIND=NUMBER[/]")
        raise typer.Exit(2) from None
    if counted_days is not None and counted_days not in {c.value for c in CountedDays}:
        err.print(f"[red]--counted-days: one of {', '.join(c.value for c in CountedDays)}[/]")
        raise typer.Exit(2)
    try:
        with db_scope(_engine()) as db:
            rule = rules.set_rule(db, region_name=region, actor="cli",
                                  counted_days=CountedDays(counted_days) if counted_days else None,
                                  deduction_multiple=multiple, kind_multiples=kinds or None,
                                  leave_overnight_allowed=overnight)
            out.print(rules.rule_summary(rule))
    except BedcheckError as e:
        err.print(f"[red]{e.code.value}: {e.message}[/]")
        raise typer.Exit(2) from None
