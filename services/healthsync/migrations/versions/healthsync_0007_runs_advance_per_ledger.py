"""a run advances per ledger, not per person; a snapshot keeps the values before its
latest check

- run_ledgers.compared_to: the last person (in person_ref order) of the ledger's work
  compared in the run. A batch moves it in the transaction that writes the batch's
  snapshots, so run_people is only written once, at the run's start (it was updated
  once more per person to mark them compared).
- snapshots.before_*: the record as it was before the latest check, set by the same
  upsert from the row it locks; the change to announce is read from there (a separate
  lock and read of every snapshot in the batch before writing it are gone).

Revision ID: healthsync_0007
Revises: healthsync_0006
Create Date: 2026-12-02 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'healthsync_0007'
down_revision = 'healthsync_0006'
branch_labels = None
depends_on = None

BEFORE = [
    ('before_code_status', sa.String(8)),
    ('before_popup', sa.String(32)),
    ('before_last_test_sampled_at', sa.DateTime(timezone=True)),
    ('before_last_test_result', sa.String(8)),
    ('before_vaccination', sa.String(16)),
    ('before_checked_at', sa.DateTime(timezone=True)),
]


def upgrade() -> None:
    op.add_column('run_ledgers', sa.Column('compared_to', sa.String(64), nullable=True), schema='healthsync')
    # runs under way when this applies: their ledgers go on from the people marked compared
    op.execute(
        """
        UPDATE healthsync.run_ledgers rl SET compared_to = p.last
        FROM (SELECT run_id, ledger_id, max(person_ref) AS last FROM healthsync.run_people
              WHERE compared_at IS NOT NULL GROUP BY run_id, ledger_id) p
        WHERE rl.status = 'pending' AND rl.run_id = p.run_id AND rl.ledger_id = p.ledger_id
        """
    )
    op.drop_index('ix_run_people_work', table_name='run_people', schema='healthsync')
    op.drop_column('run_people', 'compared_at', schema='healthsync')
    op.execute('ALTER TABLE healthsync.run_people RESET (fillfactor)')
    op.create_index('ix_run_people_work', 'run_people', ['run_id', 'ledger_id', 'person_ref'], unique=False,
                    schema='healthsync')
    for name, type_ in BEFORE:
        op.add_column('snapshots', sa.Column(name, type_, nullable=True), schema='healthsync')


def downgrade() -> None:
    for name, _ in BEFORE:
        op.drop_column('snapshots', name, schema='healthsync')
    op.drop_index('ix_run_people_work', table_name='run_people', schema='healthsync')
    op.add_column('run_people', sa.Column('compared_at', sa.DateTime(timezone=True), nullable=True), schema='healthsync')
    op.execute(
        """
        UPDATE healthsync.run_people rp SET compared_at = now()
        FROM healthsync.run_ledgers rl
        WHERE rl.run_id = rp.run_id AND rl.ledger_id = rp.ledger_id
          AND (rl.status <> 'pending' OR rp.person_ref <= rl.compared_to)
        """
    )
    op.execute('ALTER TABLE healthsync.run_people SET (fillfactor = 50)')
    op.create_index('ix_run_people_work', 'run_people', ['run_id', 'ledger_id'], unique=False, schema='healthsync')
    op.drop_column('run_ledgers', 'compared_to', schema='healthsync')
