"""snapshots keep the Health Kit's version of the record (its updated_at): a check that
asked the Health Kit before another one but writes after it no longer overwrites the
newer record

Revision ID: healthsync_0009
Revises: healthsync_0008
Create Date: 2026-12-02 18:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = 'healthsync_0009'
down_revision = 'healthsync_0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('snapshots', sa.Column('record_updated_at', sa.DateTime(timezone=True), nullable=True),
                  schema='healthsync')


def downgrade() -> None:
    op.drop_column('snapshots', 'record_updated_at', schema='healthsync')
