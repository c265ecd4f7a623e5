"""inspections: inspector devices (移动稽查) and the campaigns only they answer

Revision ID: 0013_inspections
Revises: 0012_registry
Create Date: 2026-12-07 20:10:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0013_inspections'
down_revision = '0012_registry'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default='ward'))
        batch_op.add_column(sa.Column('owner_user_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_device_owner_user_id', 'user_account', ['owner_user_id'], ['id'])
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inspector_device_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_campaign_inspector_device_id', 'device', ['inspector_device_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_constraint('fk_campaign_inspector_device_id', type_='foreignkey')
        batch_op.drop_column('inspector_device_id')
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_constraint('fk_device_owner_user_id', type_='foreignkey')
        batch_op.drop_column('owner_user_id')
        batch_op.drop_column('kind')
