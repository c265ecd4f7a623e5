"""sign-in throttle per account and address; the face_replaced flag kind

Revision ID: 0007_sign_in_throttle
Revises: 0006_flag_closes
Create Date: 2026-12-06 02:40:00
"""
from alembic import op
import sqlalchemy as sa
import server.db


revision = '0007_sign_in_throttle'
down_revision = '0006_flag_closes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sign_in_throttle',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=20), nullable=False),
        sa.Column('key', sa.String(length=120), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_failure_at', server.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('blocked_until', server.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('scope', 'key'),
    )
    with op.batch_alter_table('sign_in_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_throttle_last_failure_at'), ['last_failure_at'], unique=False)
    # SQLite stores the enum's name in a VARCHAR wide enough already; PostgreSQL has a type to extend.
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TYPE flagkind ADD VALUE IF NOT EXISTS 'FACE_REPLACED'")


def downgrade() -> None:
    with op.batch_alter_table('sign_in_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_throttle_last_failure_at'))
    op.drop_table('sign_in_throttle')
    # (PostgreSQL cannot drop an enum member: flagkind keeps FACE_REPLACED.)
