"""initial schema

Users and roles, deployments and definitions, instances with their SpiffWorkflow tasks, the
human-task inbox and the hash-chained event history.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 12:34:20.783743
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSONB on PostgreSQL, JSON (text) elsewhere: the same type as engine.adapters.tables.JsonType,
# spelled out here so this migration never changes when tables.py does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table('app_user',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_app_user'))
    )
    op.create_table('deployment',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('deployed_by', sa.String(length=120), nullable=False),
    sa.Column('deployed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=1000), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment'))
    )
    op.create_table('role',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_role'))
    )
    op.create_table('definition',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=True),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('deployed_by', sa.String(length=120), nullable=False),
    sa.Column('deployed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('files', JSON, nullable=False),
    sa.Column('elements', JSON, nullable=False),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployment.id'], name=op.f('fk_definition_deployment_id_deployment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_definition')),
    sa.UniqueConstraint('key', 'version', name=op.f('uq_definition_key_version'))
    )
    with op.batch_alter_table('definition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_definition_key_hash'), ['key', 'hash'], unique=False)

    op.create_table('user_role',
    sa.Column('user_name', sa.String(length=120), nullable=False),
    sa.Column('role_name', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['role_name'], ['role.name'], name=op.f('fk_user_role_role_name_role'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_name'], ['app_user.name'], name=op.f('fk_user_role_user_name_app_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_name', 'role_name', name=op.f('pk_user_role'))
    )
    with op.batch_alter_table('user_role', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_role_role_name'), ['role_name'], unique=False)

    op.create_table('instance',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('definition_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('business_key', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('phase', sa.String(length=255), nullable=True),
    sa.Column('data', JSON, nullable=False),
    sa.Column('error', JSON, nullable=True),
    sa.Column('workflow', sa.Text(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('started_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.Text(), nullable=True),
    sa.Column('wake_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('event_seq', sa.Integer(), server_default='0', nullable=False),
    sa.Column('event_hash', sa.String(length=64), server_default='0' * 64, nullable=False),
    sa.ForeignKeyConstraint(['definition_id'], ['definition.id'], name=op.f('fk_instance_definition_id_definition')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_instance'))
    )
    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_instance_business_key'), ['business_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_instance_state_key'), ['state', 'key'], unique=False)
        batch_op.create_index(batch_op.f('ix_instance_wake_at'), ['wake_at'], unique=False)

    op.create_table('event',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('element_id', sa.String(length=255), nullable=True),
    sa.Column('payload', JSON, nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instance.id'], name=op.f('fk_event_instance_id_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event')),
    sa.UniqueConstraint('instance_id', 'seq', name=op.f('uq_event_instance_id_seq'))
    )
    op.create_table('human_task',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('spiff_task_id', sa.String(length=36), nullable=False),
    sa.Column('process_key', sa.String(length=255), nullable=False),
    sa.Column('business_key', sa.String(length=255), nullable=True),
    sa.Column('element_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=500), nullable=True),
    sa.Column('role', sa.String(length=120), nullable=True),
    sa.Column('assignee', sa.String(length=120), nullable=True),
    sa.Column('phase', sa.String(length=255), nullable=True),
    sa.Column('form', sa.String(length=255), nullable=True),
    sa.Column('due', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['instance.id'], name=op.f('fk_human_task_instance_id_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_human_task'))
    )
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_human_task_instance_id_state'), ['instance_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_human_task_spiff_task_id'), ['spiff_task_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_human_task_state_assignee'), ['state', 'assignee'], unique=False)
        batch_op.create_index(batch_op.f('ix_human_task_state_role'), ['state', 'role'], unique=False)

    op.create_table('workflow_task',
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.String(length=36), nullable=False),
    sa.Column('workflow_id', sa.String(length=36), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['instance_id'], ['instance.id'], name=op.f('fk_workflow_task_instance_id_instance'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('instance_id', 'task_id', name=op.f('pk_workflow_task'))
    )
    op.create_table('human_task_candidate',
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['human_task.id'], name=op.f('fk_human_task_candidate_task_id_human_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('task_id', 'role', name=op.f('pk_human_task_candidate'))
    )
    with op.batch_alter_table('human_task_candidate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_human_task_candidate_role'), ['role'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('human_task_candidate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_human_task_candidate_role'))

    op.drop_table('human_task_candidate')
    op.drop_table('workflow_task')
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_human_task_state_role'))
        batch_op.drop_index(batch_op.f('ix_human_task_state_assignee'))
        batch_op.drop_index(batch_op.f('ix_human_task_spiff_task_id'))
        batch_op.drop_index(batch_op.f('ix_human_task_instance_id_state'))

    op.drop_table('human_task')
    op.drop_table('event')
    with op.batch_alter_table('instance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instance_wake_at'))
        batch_op.drop_index(batch_op.f('ix_instance_state_key'))
        batch_op.drop_index(batch_op.f('ix_instance_business_key'))

    op.drop_table('instance')
    with op.batch_alter_table('user_role', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_role_role_name'))

    op.drop_table('user_role')
    with op.batch_alter_table('definition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_definition_key_hash'))

    op.drop_table('definition')
    op.drop_table('role')
    op.drop_table('deployment')
    op.drop_table('app_user')