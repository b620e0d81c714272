"""a run's people are assigned per ledger, as one ordered list on the ledger's row; a
snapshot keeps the values before its latest check

- run_ledgers.assigned: the people (person_ref, in order) given to the ledger's work in
  the run, and gone_through: how many of them the work has gone through, moved in the
  transaction that writes a batch's snapshots. They replace run_people (one row per
  person, written at the start and again as each person was compared): a run's start
  writes 10,000 rows instead of 700,000 and two indexes, and a batch reads a few rows.
- snapshots.before_*: the record as it was before the latest check, set by the same
  upsert from the row it locks; the change to announce is read from there (a separate
  lock and read of every snapshot in the batch before writing it are gone).

Revision ID: healthsync_0007
Revises: healthsync_0006
Create Date: 2026-12-02 16:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


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
    op.add_column('run_ledgers', sa.Column('assigned', postgresql.ARRAY(sa.String(64)), nullable=True),
                  schema='healthsync')
    op.add_column('run_ledgers', sa.Column('gone_through', sa.Integer(), server_default='0', nullable=False),
                  schema='healthsync')
    # runs under way when this applies: their ledgers go on with the people not compared yet
    op.execute(
        """
        UPDATE healthsync.run_ledgers rl SET assigned = p.refs
        FROM (SELECT run_id, ledger_id, array_agg(person_ref ORDER BY person_ref) AS refs
              FROM healthsync.run_people WHERE compared_at IS NULL GROUP BY run_id, ledger_id) p
        WHERE rl.status = 'pending' AND rl.run_id = p.run_id AND rl.ledger_id = p.ledger_id
        """
    )
    op.drop_table('run_people', schema='healthsync')
    for name, type_ in BEFORE:
        op.add_column('snapshots', sa.Column(name, type_, nullable=True), schema='healthsync')


def downgrade() -> None:
    for name, _ in BEFORE:
        op.drop_column('snapshots', name, schema='healthsync')
    op.create_table(
        'run_people',
        sa.Column('run_id', sa.String(length=36), nullable=False),
        sa.Column('person_ref', sa.String(length=64), nullable=False),
        sa.Column('ledger_id', sa.String(length=36), nullable=False),
        sa.Column('compared_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('run_id', 'person_ref'),
        schema='healthsync',
    )
    op.execute('ALTER TABLE healthsync.run_people SET (fillfactor = 50)')
    op.create_index('ix_run_people_work', 'run_people', ['run_id', 'ledger_id'], unique=False, schema='healthsync')
    op.execute(
        """
        INSERT INTO healthsync.run_people (run_id, person_ref, ledger_id, compared_at)
        SELECT rl.run_id, p.person_ref, rl.ledger_id,
               CASE WHEN rl.status <> 'pending' OR p.n <= rl.gone_through THEN now() END
        FROM healthsync.run_ledgers rl, unnest(rl.assigned) WITH ORDINALITY AS p(person_ref, n)
        ON CONFLICT DO NOTHING
        """
    )
    op.drop_column('run_ledgers', 'gone_through', schema='healthsync')
    op.drop_column('run_ledgers', 'assigned', schema='healthsync')
