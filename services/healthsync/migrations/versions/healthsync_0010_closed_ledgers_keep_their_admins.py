"""a closed ledger's admins are kept, with when it closed, so they are told the ledger
closed (410 ledger_closed) instead of being refused as strangers; ledgers closed before
this lost their admins here and still refuse them

Revision ID: healthsync_0010
Revises: healthsync_0009
Create Date: 2026-12-03 21:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = 'healthsync_0010'
down_revision = 'healthsync_0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('ledger_admins', sa.Column('ledger_closed_at', sa.DateTime(timezone=True), nullable=True),
                  schema='healthsync')


def downgrade() -> None:
    op.execute("DELETE FROM healthsync.ledger_admins WHERE ledger_closed_at IS NOT NULL")
    op.drop_column('ledger_admins', 'ledger_closed_at', schema='healthsync')
