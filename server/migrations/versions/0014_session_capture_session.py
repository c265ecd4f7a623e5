"""session: a result's capture session, the beds a device is the fixed camera of, the identity_changed flag

Revision ID: 0014_session
Revises: 0013_inspections
Create Date: 2026-12-07 20:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014_session'
down_revision = '0013_inspections'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TYPE flagkind ADD VALUE IF NOT EXISTS 'IDENTITY_CHANGED'")
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session', sa.JSON(), nullable=False, server_default='{}'))
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fixed_camera_bed_ids', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; IDENTITY_CHANGED stays in the type, unused.
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_column('fixed_camera_bed_ids')
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.drop_column('session')
