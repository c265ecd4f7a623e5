"""liveness: a challenge per check task, key frames per result

Revision ID: 0011_liveness
Revises: 0010_engines
Create Date: 2026-12-02 07:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011_liveness'
down_revision = '0010_engines'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL keeps enum members in a type; SQLite stores the name in a VARCHAR wide enough already.
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TYPE flagkind ADD VALUE IF NOT EXISTS 'LIVENESS_MISMATCH'")
    with op.batch_alter_table('check_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('challenge', sa.JSON(), nullable=False, server_default='[]'))
    op.create_table(
        'key_frame',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('result_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('time_s', sa.Float(), nullable=False),
        sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('jpeg', sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(['result_id'], ['check_result.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('key_frame', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_key_frame_result_id'), ['result_id'], unique=False)


def downgrade() -> None:
    # PostgreSQL cannot drop an enum value; LIVENESS_MISMATCH stays in the type, unused.
    with op.batch_alter_table('key_frame', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_key_frame_result_id'))
    op.drop_table('key_frame')
    with op.batch_alter_table('check_task', schema=None) as batch_op:
        batch_op.drop_column('challenge')
