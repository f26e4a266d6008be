"""administration in the browser: the auditor role, a forced password change after a reset,
the last password hashes per user, and an index for the audit log viewer's pages

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 02:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

ROLES = "('agent', 'field_agent', 'supervisor', 'ops', 'admin')"
ROLES_WITH_AUDITOR = "('agent', 'field_agent', 'supervisor', 'ops', 'admin', 'auditor')"


def upgrade():
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", f"role IN {ROLES_WITH_AUDITOR}")
    op.add_column("users", sa.Column("must_change_password", sa.Boolean(), nullable=False,
                                     server_default="false"))
    op.create_table(
        "password_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("crm_now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_password_history_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_history")),
    )
    op.create_index(op.f("ix_password_history_user_id"), "password_history", ["user_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at", "id"])


def downgrade():
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index(op.f("ix_password_history_user_id"), table_name="password_history")
    op.drop_table("password_history")
    op.drop_column("users", "must_change_password")
    op.execute("UPDATE users SET active = false, role = 'agent' WHERE role = 'auditor'")
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.create_check_constraint(op.f("ck_users_role"), "users", f"role IN {ROLES}")
