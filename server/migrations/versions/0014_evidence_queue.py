"""evidence queue: a worker's claim on a result it judges, with its lease

Revision ID: 0014_evidence_queue
Revises: 0013_inspections
Create Date: 2026-12-07 20:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

import server.db


revision = '0014_evidence_queue'
down_revision = '0013_inspections'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_claimed_by', sqlmodel.sql.sqltypes.AutoString(length=80),
                                      nullable=True))
        batch_op.add_column(sa.Column('evidence_claimed_until', server.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.drop_column('evidence_claimed_until')
        batch_op.drop_column('evidence_claimed_by')
