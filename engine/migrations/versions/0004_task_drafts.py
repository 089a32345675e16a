"""task drafts

Half-filled task forms kept on the server per task and user (`task_draft`), deleted with their
task or user.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 15:17:53.861923
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('task_draft',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('user_name', sa.String(length=120), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('saved_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['human_task.id'], name=op.f('fk_task_draft_task_id_human_task'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_name'], ['app_user.name'], name=op.f('fk_task_draft_user_name_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('task_id', 'user_name', name=op.f('pk_task_draft'))
    )


def downgrade() -> None:
    op.drop_table('task_draft')
