"""templates: the fused probe's frames and their distances on each check result

Revision ID: 0015_templates
Revises: 0014_evidence_queue
Create Date: 2026-12-07 20:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_templates'
down_revision = '0014_evidence_queue'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('face_frames', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.drop_column('face_frames')
