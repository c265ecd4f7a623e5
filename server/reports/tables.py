"""Daily check counts per hospital and verdict, rolled up once a day is settled (see server/reports/rollup.py)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Field, SQLModel


class CheckTally(SQLModel, table=True):
    __tablename__ = "check_tally"

    day: date = Field(primary_key=True)  # local date of the tasks' issue
    hospital_id: int = Field(primary_key=True, foreign_key="hospital.id")
    verdict: str = Field(primary_key=True, max_length=20)
    tasks: int = 0


class TallyState(SQLModel, table=True):
    __tablename__ = "tally_state"

    id: int = Field(default=1, primary_key=True)
    rolled_through: date  # every day up to and including this one is in check_tally
