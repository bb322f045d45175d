"""The team's queue: who took a mention on and whether it was dealt with (the web console).

Revision 0003, after 0002.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mentionstate",
        sa.Column("mention_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("assigned_to", sa.String(length=100), nullable=True),
        sa.Column("done_by", sa.String(length=100), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["mention_id"], ["mention.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("mention_id"),
    )


def downgrade() -> None:
    op.drop_table("mentionstate")
