"""The schema of the releases before migrations (what their ``create_all`` made).

Revision 0001, the first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create what is missing of the baseline: a database made before migrations has all of
    it, or, from an older release still, some of it (its ``create_all`` added what was new)."""
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "alertoutbox" not in tables:
        op.create_table(
            "alertoutbox",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("idempotency_key", sa.String(length=200), nullable=False),
            sa.Column("brand", sa.String(length=200), nullable=False),
            sa.Column("sink", sa.String(length=100), nullable=False),
            sa.Column("kind", sa.String(length=50), nullable=False),
            sa.Column("payload", sa.Text(), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("idempotency_key"),
        )
        op.create_index(op.f("ix_alertoutbox_brand"), "alertoutbox", ["brand"], unique=False)
        op.create_index(op.f("ix_alertoutbox_status"), "alertoutbox", ["status"], unique=False)
    if "brandwatch" not in tables:
        op.create_table(
            "brandwatch",
            sa.Column("brand", sa.String(length=200), nullable=False),
            sa.Column("judged_until", sa.DateTime(timezone=True), nullable=False),
            sa.Column("incident_id", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("brand"),
        )
    if "incident" not in tables:
        op.create_table(
            "incident",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("brand", sa.String(length=200), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("level", sa.String(length=20), nullable=False),
            sa.Column("peak_level", sa.String(length=20), nullable=False),
            sa.Column("peak_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("peak_score", sa.Float(), nullable=False),
            sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("history", sa.Text(), nullable=False),
            sa.Column("mention_ids", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(op.f("ix_incident_brand"), "incident", ["brand"], unique=False)
    if "incidentack" not in tables:
        op.create_table(
            "incidentack",
            sa.Column("incident_id", sa.Integer(), nullable=False),
            sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
            sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("muted_until", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("incident_id"),
        )
    if "lease" not in tables:
        op.create_table(
            "lease",
            sa.Column("name", sa.String(length=300), nullable=False),
            sa.Column("owner", sa.String(length=200), nullable=True),
            sa.Column("until", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("name"),
        )
    if "mention" not in tables:
        op.create_table(
            "mention",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("brand", sa.String(length=200), nullable=False),
            sa.Column("source", sa.String(length=200), nullable=False),
            sa.Column("source_type", sa.String(length=50), nullable=False),
            sa.Column("external_id", sa.String(length=500), nullable=False),
            sa.Column("url", sa.Text(), nullable=True),
            sa.Column("canonical_url", sa.String(length=700), nullable=True),
            sa.Column("author", sa.String(length=300), nullable=True),
            sa.Column("author_followers", sa.Integer(), nullable=True),
            sa.Column("likes", sa.Integer(), nullable=True),
            sa.Column("reposts", sa.Integer(), nullable=True),
            sa.Column("replies", sa.Integer(), nullable=True),
            sa.Column("views", sa.Integer(), nullable=True),
            sa.Column("text", sa.Text(), nullable=False),
            sa.Column("language", sa.String(length=20), nullable=True),
            sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("sentiment_compound", sa.Float(), nullable=False),
            sa.Column("sentiment_label", sa.String(length=20), nullable=False),
            sa.Column("reach_score", sa.Float(), nullable=False),
            sa.Column("category", sa.String(length=50), nullable=True),
            sa.Column("priority", sa.String(length=4), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("brand", "canonical_url", name="uq_mention_url"),
            sa.UniqueConstraint("source", "external_id", "brand", name="uq_mention_source_id"),
        )
        op.create_index(
            "ix_mention_brand_published", "mention", ["brand", "published_at"], unique=False
        )
        op.create_index(op.f("ix_mention_published_at"), "mention", ["published_at"], unique=False)
    if "slackpost" not in tables:
        op.create_table(
            "slackpost",
            sa.Column("key", sa.String(length=250), nullable=False),
            sa.Column("channel", sa.String(length=100), nullable=False),
            sa.Column("ts", sa.String(length=50), nullable=True),
            sa.PrimaryKeyConstraint("key", "channel"),
        )
    if "slackthread" not in tables:
        op.create_table(
            "slackthread",
            sa.Column("incident_id", sa.Integer(), nullable=False),
            sa.Column("channel", sa.String(length=100), nullable=False),
            sa.Column("ts", sa.String(length=50), nullable=False),
            sa.PrimaryKeyConstraint("incident_id", "channel"),
        )
    if "sourcestate" not in tables:
        op.create_table(
            "sourcestate",
            sa.Column("source", sa.String(length=200), nullable=False),
            sa.Column("cursor", sa.Text(), nullable=True),
            sa.Column("etag", sa.String(length=500), nullable=True),
            sa.Column("last_modified", sa.String(length=100), nullable=True),
            sa.Column("last_poll", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_success", sa.DateTime(timezone=True), nullable=True),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("consecutive_failures", sa.Integer(), nullable=False),
            sa.Column("next_poll", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("source"),
        )
    if "mentionlabel" not in tables:
        op.create_table(
            "mentionlabel",
            sa.Column("mention_id", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("sentiment", sa.String(length=20), nullable=False),
            sa.Column("category", sa.String(length=50), nullable=True),
            sa.Column("labelled_by", sa.String(length=100), nullable=True),
            sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(["mention_id"], ["mention.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("mention_id"),
        )
        # ### end Alembic commands ###


def downgrade() -> None:
    op.drop_table("mentionlabel")
    op.drop_table("sourcestate")
    op.drop_table("slackthread")
    op.drop_table("slackpost")
    op.drop_index(op.f("ix_mention_published_at"), table_name="mention")
    op.drop_index("ix_mention_brand_published", table_name="mention")
    op.drop_table("mention")
    op.drop_table("lease")
    op.drop_table("incidentack")
    op.drop_index(op.f("ix_incident_brand"), table_name="incident")
    op.drop_table("incident")
    op.drop_table("brandwatch")
    op.drop_index(op.f("ix_alertoutbox_status"), table_name="alertoutbox")
    op.drop_index(op.f("ix_alertoutbox_brand"), table_name="alertoutbox")
    op.drop_table("alertoutbox")
    # ### end Alembic commands ###
