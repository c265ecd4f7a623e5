"""funds, leave, eligibility, report tallies

Revision ID: 0005_funds
Revises: 0004_sessions
Create Date: 2026-12-02 06:30:40.813180
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import server.db


revision = '0005_funds'
down_revision = '0004_sessions'
branch_labels = None
depends_on = None


NEW_ENUM_VALUES = {"verdict": ["ON_LEAVE"], "flagkind": ["INELIGIBLE", "LEAVE_OVERDUE", "LEAVE_OVERNIGHT"]}


def upgrade() -> None:
    # PostgreSQL keeps enum members in a type; SQLite stores the name in a VARCHAR wide enough already.
    if op.get_bind().dialect.name == "postgresql":
        for type_name, values in NEW_ENUM_VALUES.items():
            for value in values:
                op.execute(f"ALTER TYPE {type_name} ADD VALUE IF NOT EXISTS '{value}'")
        # add_column does not create an enum type the way create_table does
        sa.Enum('ACTIVE', 'SUSPENDED', 'ENDED', name='insurancestatus').create(op.get_bind(), checkfirst=True)
    op.create_table('tally_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rolled_through', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('agreement_rule',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('counted_days', sa.Enum('SINCE_LAST_VERIFIED', 'WHOLE_ADMISSION', name='counteddays'), nullable=False),
    sa.Column('deduction_multiple', sa.Float(), nullable=False),
    sa.Column('kind_multiples', sa.JSON(), nullable=False),
    sa.Column('leave_overnight_allowed', sa.Boolean(), nullable=False),
    sa.Column('night_starts', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
    sa.Column('night_ends', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
    sa.Column('updated_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('updated_at', server.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['region.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('region_id')
    )
    op.create_table('check_tally',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('verdict', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('tasks', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], ),
    sa.PrimaryKeyConstraint('day', 'hospital_id', 'verdict')
    )
    op.create_table('admission_leave',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('admission_id', sa.Integer(), nullable=False),
    sa.Column('hospital_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('approved_by_doctor', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('approved_by_insurance_officer', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('created_at', server.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('returned_at', server.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('overdue_flagged_at', server.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['admission_id'], ['admission.id'], ),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospital.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('admission_leave', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admission_leave_admission_id'), ['admission_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_admission_leave_ends_at'), ['ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_admission_leave_hospital_id'), ['hospital_id'], unique=False)

    with op.batch_alter_table('admission', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fund_per_day_fen', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('fund_total_fen', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('fund_total_at', server.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('check_task', schema=None) as batch_op:
        batch_op.create_index('ix_check_task_admission_issued', ['admission_id', 'issued_at'], unique=False)
        batch_op.create_index('ix_check_task_issued_hospital', ['issued_at', 'hospital_id', 'verdict'], unique=False)

    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refused_fen', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('deduction_fen', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_flag_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('insured_person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('insurance_status', sa.Enum('ACTIVE', 'SUSPENDED', 'ENDED', name='insurancestatus'), nullable=True))
        batch_op.add_column(sa.Column('insurance_type', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('insured_from', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('insured_until', sa.Date(), nullable=True))

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('insured_person', schema=None) as batch_op:
        batch_op.drop_column('insured_until')
        batch_op.drop_column('insured_from')
        batch_op.drop_column('insurance_type')
        batch_op.drop_column('insurance_status')

    with op.batch_alter_table('flag', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_created_at'))
        batch_op.drop_column('deduction_fen')
        batch_op.drop_column('refused_fen')

    with op.batch_alter_table('check_task', schema=None) as batch_op:
        batch_op.drop_index('ix_check_task_issued_hospital')
        batch_op.drop_index('ix_check_task_admission_issued')

    with op.batch_alter_table('admission', schema=None) as batch_op:
        batch_op.drop_column('fund_total_at')
        batch_op.drop_column('fund_total_fen')
        batch_op.drop_column('fund_per_day_fen')

    with op.batch_alter_table('admission_leave', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admission_leave_hospital_id'))
        batch_op.drop_index(batch_op.f('ix_admission_leave_ends_at'))
        batch_op.drop_index(batch_op.f('ix_admission_leave_admission_id'))

    op.drop_table('admission_leave')
    op.drop_table('check_tally')
    op.drop_table('agreement_rule')
    op.drop_table('tally_state')
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TYPE IF EXISTS counteddays")
        op.execute("DROP TYPE IF EXISTS insurancestatus")
    # (PostgreSQL cannot drop enum members: verdict and flagkind keep the new values.)
