"""sign-out ends a user's sessions

Revision ID: 0004_sessions
Revises: 0003_evidence
Create Date: 2026-12-01 20:55:00
"""
from alembic import op
import sqlalchemy as sa
import server.db


revision = '0004_sessions'
down_revision = '0003_evidence'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sessions_revoked_at', server.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('sessions_revoked_at')
