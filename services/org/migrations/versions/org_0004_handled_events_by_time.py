"""handled events indexed by time, so old ones can be forgotten

Revision ID: org_0004
Revises: org_0003
Create Date: 2026-12-02 00:40:00
"""
from alembic import op


revision = 'org_0004'
down_revision = 'org_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_handled_events_handled_at', 'handled_events', ['handled_at'], unique=False, schema='org')


def downgrade() -> None:
    op.drop_index('ix_handled_events_handled_at', table_name='handled_events', schema='org')
