"""run people marked compared in place: half-full pages and no index on compared_at, so
marking a batch is a heap-only (HOT) update instead of a new row version and two new
index entries per person

Revision ID: healthsync_0006
Revises: healthsync_0005
Create Date: 2026-12-02 14:00:00
"""
from alembic import op


revision = 'healthsync_0006'
down_revision = 'healthsync_0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_run_people_work', table_name='run_people', schema='healthsync')
    op.create_index('ix_run_people_work', 'run_people', ['run_id', 'ledger_id'], unique=False, schema='healthsync')
    op.execute('ALTER TABLE healthsync.run_people SET (fillfactor = 50)')


def downgrade() -> None:
    op.execute('ALTER TABLE healthsync.run_people RESET (fillfactor)')
    op.drop_index('ix_run_people_work', table_name='run_people', schema='healthsync')
    op.create_index('ix_run_people_work', 'run_people', ['run_id', 'ledger_id', 'compared_at'], unique=False,
                    schema='healthsync')
