"""evidence used once (fingerprints of every uploaded image); bed references approved by the bureau

Revision ID: 0016_evidence_once
Revises: 0015_templates
Create Date: 2026-12-07 20:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import server.db


revision = '0016_evidence_once'
down_revision = '0015_templates'
branch_labels = None
depends_on = None

STATUS = sa.Enum('PENDING', 'APPROVED', 'REJECTED', name='referencestatus')


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'postgresql':
        op.execute("ALTER TYPE flagkind ADD VALUE IF NOT EXISTS 'REPLAYED_EVIDENCE'")
        STATUS.create(bind, checkfirst=True)
    op.create_table(
        'evidence_fingerprint',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('result_id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=False),
        sa.Column('bed_id', sa.Integer(), nullable=False),
        sa.Column('insured_person_id', sa.Integer(), nullable=False),
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('part', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('phash', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', server.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['result_id'], ['check_result.id'], ),
        sa.ForeignKeyConstraint(['task_id'], ['check_task.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('evidence_fingerprint', schema=None) as batch_op:
        for column in ('bed_id', 'created_at', 'device_id', 'insured_person_id', 'result_id', 'sha256'):
            batch_op.create_index(batch_op.f(f'ix_evidence_fingerprint_{column}'), [column], unique=False)
    with op.batch_alter_table('bed_reference', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', STATUS, nullable=False, server_default='APPROVED'))
        batch_op.add_column(sa.Column('decided_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch_op.add_column(sa.Column('decided_at', server.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decision_note', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False,
                                      server_default=''))
        batch_op.create_index(batch_op.f('ix_bed_reference_status'), ['status'], unique=False)
    # References a hospital's device took were active at once: they wait for the bureau now like new ones
    # (a planted room must not stay in force). Others (the simulation's, set up by the bureau) stay approved.
    op.execute("UPDATE bed_reference SET status = 'PENDING', is_active = false WHERE created_by LIKE 'device:%'")
    with op.batch_alter_table('bed_reference', schema=None) as batch_op:
        batch_op.alter_column('status', server_default=None)
        batch_op.alter_column('decision_note', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('bed_reference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bed_reference_status'))
        batch_op.drop_column('decision_note')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('decided_by')
        batch_op.drop_column('status')
    if op.get_bind().dialect.name == 'postgresql':
        STATUS.drop(op.get_bind(), checkfirst=True)
    with op.batch_alter_table('evidence_fingerprint', schema=None) as batch_op:
        for column in ('sha256', 'result_id', 'insured_person_id', 'device_id', 'created_at', 'bed_id'):
            batch_op.drop_index(batch_op.f(f'ix_evidence_fingerprint_{column}'))
    op.drop_table('evidence_fingerprint')
