"""The (brand, published_at) index also holds each mention's sentiment label and reach score.

Counting a brand's mentions per bucket (``Storage.activity``: every detection pass, the report,
the backtest) and finding its most influential negative ones then read the index alone: without
them it looked every mention up in the table, one page read per mention (a month of one brand
at a million mentions: 0.16 s of SQLite, 0.03 s from the index).

Revision 0005, after 0004.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NAME = "ix_mention_brand_published"


def upgrade() -> None:
    op.drop_index(NAME, table_name="mention")
    op.create_index(NAME, "mention", ["brand", "published_at", "sentiment_label", "reach_score"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="mention")
    op.create_index(NAME, "mention", ["brand", "published_at"])
