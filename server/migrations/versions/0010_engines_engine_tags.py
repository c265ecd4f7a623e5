"""face engines: device engine, face chips for re-encoding, re-encoded rows

Revision ID: 0010_engines
Revises: 0009_places
Create Date: 2026-12-02 07:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010_engines'
down_revision = '0009_places'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(sa.Column('engine_version', sqlmodel.sql.sqltypes.AutoString(length=80),
                                      nullable=False, server_default=''))
    with op.batch_alter_table('face_embedding', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chip_jpeg', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('reencoded_from_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_face_embedding_reencoded_from_id'), ['reencoded_from_id'], unique=False)
        batch_op.create_foreign_key('fk_face_embedding_reencoded_from_id', 'face_embedding',
                                    ['reencoded_from_id'], ['id'])
        batch_op.create_index('ix_face_embedding_engine_version', ['engine_version'], unique=False)
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('server_engine_version', sqlmodel.sql.sqltypes.AutoString(length=80),
                                      nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('check_result', schema=None) as batch_op:
        batch_op.drop_column('server_engine_version')
    with op.batch_alter_table('face_embedding', schema=None) as batch_op:
        batch_op.drop_index('ix_face_embedding_engine_version')
        batch_op.drop_constraint('fk_face_embedding_reencoded_from_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_face_embedding_reencoded_from_id'))
        batch_op.drop_column('reencoded_from_id')
        batch_op.drop_column('chip_jpeg')
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_column('engine_version')
