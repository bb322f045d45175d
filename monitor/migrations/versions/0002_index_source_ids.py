"""An index that leads with (source, external_id) where the unique index does not.

Databases made before the (source, external_id, brand) unique index was reordered have it as
(brand, source, external_id), which cannot serve the already-stored check of a poll (by source
and id): they get an index of their own.  Newer databases need none.

Revision 0002, after 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_ORDER = ["brand", "source", "external_id"]


def upgrade() -> None:
    constraints = sa.inspect(op.get_bind()).get_unique_constraints("mention")
    if any(constraint["column_names"] == OLD_ORDER for constraint in constraints):
        op.create_index("ix_mention_source_id", "mention", ["source", "external_id"])


def downgrade() -> None:
    indexes = sa.inspect(op.get_bind()).get_indexes("mention")
    if any(index["name"] == "ix_mention_source_id" for index in indexes):
        op.drop_index("ix_mention_source_id", table_name="mention")
