"""registry: the registry_mismatch flag kind (a hospital's HIS states insurance the bureau's registry does not)

Revision ID: 0012_registry
Revises: 0011_liveness
Create Date: 2026-12-07 20:20:00
"""
from alembic import op


revision = '0012_registry'
down_revision = '0011_liveness'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL keeps enum members in a type; SQLite stores the name in a VARCHAR wide enough already.
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("ALTER TYPE flagkind ADD VALUE IF NOT EXISTS 'REGISTRY_MISMATCH'")


def downgrade() -> None:
    # PostgreSQL cannot drop one value of an enum type: 'REGISTRY_MISMATCH' stays in flagkind, unused.
    pass
