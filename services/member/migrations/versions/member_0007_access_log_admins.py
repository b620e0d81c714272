"""the access log says which admin viewed: org's admin id and masked phone, kept with
each admin of the ledger projection and written into each access record

Revision ID: member_0007
Revises: member_0006
Create Date: 2026-12-04 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'member_0007'
down_revision = 'member_0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('ledger_admins', sa.Column('admin_id', sa.String(length=36), nullable=True), schema='member')
    op.add_column('ledger_admins', sa.Column('masked_phone', sa.String(length=20), server_default='', nullable=False),
                  schema='member')
    op.add_column('access_log', sa.Column('admin_id', sa.String(length=36), nullable=True), schema='member')
    op.add_column('access_log', sa.Column('admin_phone', sa.String(length=20), nullable=True), schema='member')


def downgrade() -> None:
    op.drop_column('access_log', 'admin_phone', schema='member')
    op.drop_column('access_log', 'admin_id', schema='member')
    op.drop_column('ledger_admins', 'masked_phone', schema='member')
    op.drop_column('ledger_admins', 'admin_id', schema='member')
