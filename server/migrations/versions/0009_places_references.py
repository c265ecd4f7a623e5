"""place (实地): bed references, ward Wi-Fi fingerprints, hospital geofences, scene evidence

Revision ID: 0009_places
Revises: 0008_server_embedding
Create Date: 2026-12-02 06:36:45.617328
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import sqlmodel
import server.db


revision = '0009_places'
down_revision = '0008_server_embedding'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE flagkind ADD VALUE IF NOT EXISTS 'PLACE_MISMATCH'")
    op.create_table('hospital_geofence',
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('radius_m', sa.Float(), nullable=False),
    sa.Column('updated_at', server.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], ),
    sa.PrimaryKeyConstraint('hospital_id')
    )
    op.create_table('ward_fingerprint',
    sa.Column('ward_id', sa.Integer(), nullable=False),
    sa.Column('wifi_bssids', sa.JSON(), nullable=False),
    sa.Column('updated_at', server.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ward_id'], ['ward.id'], ),
    sa.PrimaryKeyConstraint('ward_id')
    )
    op.create_table('bed_reference',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bed_id', sa.Integer(), nullable=False),
    sa.Column('ward_id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Enum('TABLET', 'BED_CAMERA', name='scenesource'), nullable=False),
    sa.Column('scene_jpeg', sa.LargeBinary(), nullable=False),
    sa.Column('feature_count', sa.Integer(), nullable=False),
    sa.Column('cues', sa.JSON(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('created_at', server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['bed_id'], ['bed.id'], ),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], ),
    sa.ForeignKeyConstraint(['ward_id'], ['ward.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bed_reference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bed_reference_bed_id'), ['bed_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bed_reference_hospital_id'), ['hospital_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bed_reference_is_active'), ['is_active'], unique=False)
        batch_op.create_index(batch_op.f('ix_bed_reference_ward_id'), ['ward_id'], unique=False)

    op.create_table('scene_evidence',
    sa.Column('result_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Enum('TABLET', 'BED_CAMERA', name='scenesource').with_variant(
        postgresql.ENUM('TABLET', 'BED_CAMERA', name='scenesource', create_type=False), 'postgresql'), nullable=False),
    sa.Column('scene_jpeg', sa.LargeBinary(), nullable=True),
    sa.Column('cues', sa.JSON(), nullable=False),
    sa.Column('place_score', sa.Integer(), nullable=True),
    sa.Column('place_threshold', sa.Integer(), nullable=True),
    sa.Column('reference_id', sa.Integer(), nullable=True),
    sa.Column('matched_bed_id', sa.Integer(), nullable=True),
    sa.Column('place_details', sa.JSON(), nullable=False),
    sa.Column('checked_at', server.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['reference_id'], ['bed_reference.id'], ),
    sa.ForeignKeyConstraint(['result_id'], ['check_result.id'], ),
    sa.PrimaryKeyConstraint('result_id')
    )


def downgrade() -> None:
    op.drop_table('scene_evidence')
    with op.batch_alter_table('bed_reference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bed_reference_ward_id'))
        batch_op.drop_index(batch_op.f('ix_bed_reference_is_active'))
        batch_op.drop_index(batch_op.f('ix_bed_reference_hospital_id'))
        batch_op.drop_index(batch_op.f('ix_bed_reference_bed_id'))

    op.drop_table('bed_reference')
    op.drop_table('ward_fingerprint')
    op.drop_table('hospital_geofence')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS scenesource")
    # PostgreSQL cannot drop one value of an enum type: 'PLACE_MISMATCH' stays in flagkind, unused.
