"""flag statuses closed by the system: superseded (a late result), resolved (a 叠床 overlap discharged)

Revision ID: 0006_flag_closes
Revises: 0005_funds
Create Date: 2026-12-02 07:00:00
"""
from alembic import op


revision = '0006_flag_closes'
down_revision = '0005_funds'
branch_labels = None
depends_on = None

NEW = ('SUPERSEDED', 'RESOLVED')


def upgrade() -> None:
    # SQLite stores the enum as text without a constraint; PostgreSQL has a type to extend.
    if op.get_bind().dialect.name == 'postgresql':
        for value in NEW:
            op.execute(f"ALTER TYPE flagstatus ADD VALUE IF NOT EXISTS '{value}'")


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; rows using them go back to open.
    op.execute("UPDATE flag SET status = 'OPEN' WHERE status IN ('SUPERSEDED', 'RESOLVED')")
