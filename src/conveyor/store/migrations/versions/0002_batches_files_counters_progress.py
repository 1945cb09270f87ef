"""batches: one row per file (its status, result and error), counters and progress bookkeeping

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 06:05:10.190850
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import conveyor.store.tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_files",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("document_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("matches", sa.Integer(), nullable=False),
        sa.Column("finished_at", conveyor.store.tables.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_files_batch_id_batches"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_batch_files_document_id_documents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_files")),
    )
    with op.batch_alter_table("batch_files", schema=None) as batch_op:
        batch_op.create_index("ix_batch_files_batch_id_id", ["batch_id", "id"], unique=False)

    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("chunk_size", sa.Integer(), nullable=False, server_default="10"))
        batch_op.add_column(sa.Column("targets", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("progress_at", conveyor.store.tables.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("report_key", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("created_by", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("created_by")
        batch_op.drop_column("report_key")
        batch_op.drop_column("progress_done")
        batch_op.drop_column("progress_at")
        batch_op.drop_column("cancel_requested")
        batch_op.drop_column("targets")
        batch_op.drop_column("chunk_size")
        batch_op.drop_column("source")

    with op.batch_alter_table("batch_files", schema=None) as batch_op:
        batch_op.drop_index("ix_batch_files_batch_id_id")

    op.drop_table("batch_files")
