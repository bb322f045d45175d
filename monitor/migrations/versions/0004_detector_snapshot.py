"""Each brand's detector, saved after each judgement, so any instance resumes it without
replaying history (``monitor.snapshot``).

Revision 0004, after 0003.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("brandwatch") as table:
        table.add_column(sa.Column("detector", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("brandwatch") as table:
        table.drop_column("detector")
