"""a re-confirmation's SMS names the act it confirms

Revision ID: verify_0006
Revises: verify_0005
Create Date: 2026-12-03 21:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'verify_0006'
down_revision = 'verify_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('challenges', sa.Column('act', sa.String(length=100), nullable=True), schema='verify')


def downgrade() -> None:
    op.drop_column('challenges', 'act', schema='verify')
