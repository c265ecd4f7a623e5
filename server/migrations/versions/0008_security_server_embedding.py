"""the server's own embedding of each uploaded face crop (what a face result's verdict is decided on)

Revision ID: 0008_server_embedding
Revises: 0007_sign_in_throttle
Create Date: 2026-12-06 02:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_server_embedding'
down_revision = '0007_sign_in_throttle'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('server_embedding', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.drop_column('server_embedding')
