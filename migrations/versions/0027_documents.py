"""documents against a customer or an account (IDs, receipts, visit photos, legal notices) and
the log of every opening or download

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 04:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

KINDS = ("id_document", "receipt", "visit_photo", "legal_notice", "other")
CONTENT_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/webp", "image/heic")


def _in(*values: str) -> str:
    return "IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade():
    op.create_table(
        "documents",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cif", sa.String(length=32), nullable=False),
        sa.Column("account_number", sa.String(length=32), nullable=True),
        sa.Column("visit_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("storage_key", sa.String(length=40), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(f"kind {_in(*KINDS)}", name=op.f("ck_documents_kind")),
        sa.CheckConstraint(f"content_type {_in(*CONTENT_TYPES)}",
                           name=op.f("ck_documents_content_type")),
        sa.CheckConstraint("size_bytes > 0", name=op.f("ck_documents_size_positive")),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_documents_sha256_format")),
        sa.CheckConstraint("storage_key ~ '^[0-9a-f]{2}/[0-9a-f]{32}$'",
                           name=op.f("ck_documents_storage_key_format")),
        sa.CheckConstraint("kind = 'visit_photo' OR visit_id IS NULL",
                           name=op.f("ck_documents_visit_photo_visit")),
        sa.ForeignKeyConstraint(["cif"], ["customers.cif"], onupdate="CASCADE",
                                ondelete="RESTRICT", name=op.f("fk_documents_cif_customers")),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"], ondelete="SET NULL",
                                name=op.f("fk_documents_visit_id_visits")),
        sa.ForeignKeyConstraint(["uploaded_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_documents_uploaded_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_documents_storage_key")),
    )
    op.create_index("ix_documents_cif", "documents", ["cif", "uploaded_at"])
    op.create_index(op.f("ix_documents_visit_id"), "documents", ["visit_id"])

    op.create_table(
        "document_downloads",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("disposition", sa.String(length=10), nullable=False),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.CheckConstraint("disposition IN ('inline', 'attachment')",
                           name=op.f("ck_document_downloads_disposition")),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"], ondelete="CASCADE",
                                name=op.f("fk_document_downloads_document_id_documents")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_document_downloads_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_downloads")),
    )
    op.create_index("ix_document_downloads_document", "document_downloads",
                    ["document_id", "downloaded_at"])
    op.create_index(op.f("ix_document_downloads_user_id"), "document_downloads", ["user_id"])


def downgrade():
    # the rows go; the files in the document store stay where they are (nothing is deleted
    # from the store by a schema change)
    op.drop_table("document_downloads")
    op.drop_table("documents")
