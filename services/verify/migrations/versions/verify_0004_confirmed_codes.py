"""a confirmed code no longer counts against its client address's daily cap

Revision ID: verify_0004
Revises: verify_0003
Create Date: 2026-12-03 18:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'verify_0004'
down_revision = 'verify_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('sms_sends', sa.Column('challenge_id', sa.String(length=36), nullable=True), schema='verify')
    op.add_column('sms_sends', sa.Column('confirmed', sa.Boolean(), server_default=sa.false(), nullable=False),
                  schema='verify')
    op.drop_index('ix_sms_sends_client_at', table_name='sms_sends', schema='verify')
    op.create_index('ix_sms_sends_client_unconfirmed', 'sms_sends', ['client', 'sent_at'], unique=False,
                    schema='verify', postgresql_where=sa.text('NOT confirmed'))


def downgrade() -> None:
    op.drop_index('ix_sms_sends_client_unconfirmed', table_name='sms_sends', schema='verify',
                  postgresql_where=sa.text('NOT confirmed'))
    op.create_index('ix_sms_sends_client_at', 'sms_sends', ['client', 'sent_at'], unique=False, schema='verify')
    op.drop_column('sms_sends', 'confirmed', schema='verify')
    op.drop_column('sms_sends', 'challenge_id', schema='verify')
