"""rejections that named the field at fault, counted per ID number and per client address

Revision ID: verify_0005
Revises: verify_0004
Create Date: 2026-12-03 20:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'verify_0005'
down_revision = 'verify_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_challenges_person_mismatches', 'challenges', ['person_ref', 'created_at'], unique=False,
                    schema='verify', postgresql_where=sa.text("status = 'rejected'"))
    op.create_index('ix_challenges_client_mismatches', 'challenges', ['client', 'created_at'], unique=False,
                    schema='verify', postgresql_where=sa.text("status = 'rejected'"))


def downgrade() -> None:
    op.drop_index('ix_challenges_client_mismatches', table_name='challenges', schema='verify',
                  postgresql_where=sa.text("status = 'rejected'"))
    op.drop_index('ix_challenges_person_mismatches', table_name='challenges', schema='verify',
                  postgresql_where=sa.text("status = 'rejected'"))
