"""ledgers remember when their member cap last changed (org.member_cap_changed)

Revision ID: member_0006
Revises: member_0005
Create Date: 2026-12-03 18:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'member_0006'
down_revision = 'member_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('ledgers', sa.Column('cap_changed_at', sa.DateTime(timezone=True), nullable=True), schema='member')


def downgrade() -> None:
    op.drop_column('ledgers', 'cap_changed_at', schema='member')
