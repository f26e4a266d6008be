"""statuses people set on a case (dictionaries, history), master note versions

The processing state keeps its column and codes: its fixed list becomes the "processing_state"
dictionary, seeded with the six codes the cases hold (and substates), so every case's value is
a value of the dictionary. A case's note becomes the master note, its text the first version.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 02:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

KINDS = ("processing_state", "customer_status", "collateral_status", "recovery_ability",
         "lending_violation")
OLD_PROCESSING_STATES = ("new", "contacting", "negotiating", "monitoring", "escalated", "done")
CASE_COLUMNS = ("processing_substate_id", "customer_status_id", "collateral_status_id",
                "recovery_ability_id", "lending_violation_id")

# (kind, code, Vietnamese, English, colour, [(substate code, Vietnamese, English)])
DEFAULTS = [
    ("processing_state", "new", "Mới tiếp nhận", "New", "#64748b", []),
    ("processing_state", "contacting", "Đang liên hệ", "Contacting", "#1d4ed8", [
        ("no_answer", "Không nghe máy", "No answer"),
        ("wrong_number", "Sai số điện thoại", "Wrong number"),
        ("message_left", "Đã để lại lời nhắn", "Message left"),
    ]),
    ("processing_state", "negotiating", "Đang thương lượng", "Negotiating", "#7c3aed", [
        ("restructure_request", "Đề nghị cơ cấu lại nợ", "Asks to restructure"),
        ("interest_waiver_request", "Đề nghị miễn giảm lãi", "Asks for an interest waiver"),
    ]),
    ("processing_state", "monitoring", "Theo dõi cam kết trả nợ", "Monitoring promises",
     "#f59e0b", []),
    ("processing_state", "escalated", "Chuyển cấp xử lý", "Escalated", "#b91c1c", [
        ("field_collection", "Chuyển thu hồi nợ tại địa bàn", "Sent to field collection"),
        ("legal_review", "Chuyển pháp chế xem xét khởi kiện", "Sent to legal review"),
        ("skip_trace", "Truy tìm thông tin khách hàng", "Skip tracing"),
    ]),
    ("processing_state", "done", "Hoàn tất xử lý", "Done", "#15803d", []),
    ("customer_status", "cooperative", "Hợp tác", "Cooperative", "#15803d", []),
    ("customer_status", "willing_unable", "Thiện chí nhưng khó khăn tài chính",
     "Willing but unable to pay", "#f59e0b", []),
    ("customer_status", "refuses", "Không hợp tác, từ chối trả nợ", "Refuses to pay",
     "#b91c1c", []),
    ("customer_status", "disputes", "Khiếu nại, tranh chấp khoản nợ", "Disputes the debt",
     "#ea580c", []),
    ("customer_status", "unreachable", "Không liên lạc được", "Unreachable", "#64748b", []),
    ("customer_status", "absconded", "Bỏ trốn khỏi nơi cư trú", "Absconded", "#7f1d1d", []),
    ("customer_status", "imprisoned", "Đang chấp hành án", "Imprisoned", "#4c1d95", []),
    ("customer_status", "deceased", "Đã qua đời", "Deceased", "#1f2937", []),
    ("collateral_status", "none", "Không có tài sản bảo đảm", "No collateral", "#94a3b8", []),
    ("collateral_status", "held", "Đang quản lý tài sản bảo đảm", "Collateral held",
     "#1d4ed8", []),
    ("collateral_status", "seizure_in_progress", "Đang thu giữ tài sản bảo đảm",
     "Seizure in progress", "#f59e0b", []),
    ("collateral_status", "seized", "Đã thu giữ tài sản bảo đảm", "Collateral seized",
     "#ea580c", []),
    ("collateral_status", "at_auction", "Đang bán đấu giá tài sản", "At auction", "#7c3aed", []),
    ("collateral_status", "sold", "Đã xử lý tài sản bảo đảm", "Collateral sold", "#15803d", []),
    ("collateral_status", "damaged_missing", "Tài sản hư hỏng, thất lạc", "Damaged or missing",
     "#b91c1c", []),
    ("recovery_ability", "high", "Khả năng thu hồi cao", "High", "#15803d", []),
    ("recovery_ability", "medium", "Khả năng thu hồi trung bình", "Medium", "#f59e0b", []),
    ("recovery_ability", "low", "Khả năng thu hồi thấp", "Low", "#ea580c", []),
    ("recovery_ability", "none", "Không có khả năng thu hồi", "No prospect of recovery",
     "#b91c1c", []),
    ("lending_violation", "none", "Không vi phạm", "No violation", "#15803d", []),
    ("lending_violation", "misused_funds", "Sử dụng vốn sai mục đích", "Funds misused",
     "#ea580c", []),
    ("lending_violation", "false_documents", "Hồ sơ vay giả mạo", "Falsified loan documents",
     "#b91c1c", []),
    ("lending_violation", "suspected_fraud", "Có dấu hiệu lừa đảo", "Suspected fraud",
     "#7f1d1d", []),
    ("lending_violation", "process_breach", "Vi phạm quy trình cấp tín dụng",
     "Lending process breached", "#7c3aed", []),
]


def _seed_values():
    insert = sa.text(
        "INSERT INTO status_values (kind, code, parent_id, label_vi, label_en, colour, "
        "sort_order) VALUES (:kind, :code, (SELECT id FROM status_values WHERE kind = :parent_kind "
        "AND code = :parent), :vi, :en, :colour, :order)")
    conn = op.get_bind()
    order = {}
    for kind, code, vi, en, colour, substates in DEFAULTS:
        order[kind] = order.get(kind, 0) + 10
        conn.execute(insert, {"kind": kind, "parent_kind": kind, "code": code, "parent": None, "vi": vi, "en": en,
                              "colour": colour, "order": order[kind]})
        for i, (sub, sub_vi, sub_en) in enumerate(substates, start=1):
            conn.execute(insert, {"kind": kind, "parent_kind": kind, "code": sub, "parent": code, "vi": sub_vi,
                                  "en": sub_en, "colour": colour, "order": i * 10})


def upgrade():
    op.create_table(
        "status_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("label_vi", sa.String(length=120), nullable=False),
        sa.Column("label_en", sa.String(length=120), nullable=False),
        sa.Column("colour", sa.String(length=7), server_default="#607d8b", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("crm_now()"),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("crm_now()"),
                  nullable=False),
        sa.CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")",
                           name=op.f("ck_status_values_kind")),
        sa.CheckConstraint("code ~ '^[a-z0-9_]+$'", name=op.f("ck_status_values_code_format")),
        sa.CheckConstraint("colour ~ '^#[0-9a-f]{6}$'",
                           name=op.f("ck_status_values_colour_format")),
        sa.CheckConstraint("parent_id IS NULL OR kind = 'processing_state'",
                           name=op.f("ck_status_values_substates_of_processing_states")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_values")),
        sa.UniqueConstraint("kind", "code", name=op.f("uq_status_values_kind_code")),
        sa.UniqueConstraint("kind", "id", name="uq_status_values_kind_id"),
        sa.ForeignKeyConstraint(["kind", "parent_id"], ["status_values.kind", "status_values.id"],
                                name="fk_status_values_parent"),
    )
    op.create_index(op.f("ix_status_values_parent_id"), "status_values", ["parent_id"])
    _seed_values()

    op.drop_constraint(op.f("ck_cases_processing_state"), "cases", type_="check")
    for column in CASE_COLUMNS:
        op.add_column("cases", sa.Column(column, sa.Integer(), nullable=True))
        op.create_foreign_key(op.f(f"fk_cases_{column}_status_values"), "cases",
                              "status_values", [column], ["id"])
        op.create_index(op.f(f"ix_cases_{column}"), "cases", [column])

    op.create_table(
        "case_status_changes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value_id", sa.Integer(), nullable=False),
        sa.Column("substate_id", sa.Integer(), nullable=True),
        sa.Column("previous_value_id", sa.Integer(), nullable=True),
        sa.Column("previous_substate_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=16), server_default="manual", nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in KINDS) + ")",
                           name=op.f("ck_case_status_changes_kind")),
        sa.CheckConstraint("source IN ('manual', 'system')",
                           name=op.f("ck_case_status_changes_source")),
        sa.CheckConstraint("source = 'system' OR reason IS NOT NULL",
                           name=op.f("ck_case_status_changes_manual_has_reason")),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE",
                                name=op.f("fk_case_status_changes_case_id_cases")),
        sa.ForeignKeyConstraint(["changed_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_case_status_changes_changed_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_status_changes")),
    )
    for column in ("value_id", "substate_id", "previous_value_id", "previous_substate_id"):
        op.create_foreign_key(op.f(f"fk_case_status_changes_{column}_status_values"),
                              "case_status_changes", "status_values", [column], ["id"])
        op.create_index(op.f(f"ix_case_status_changes_{column}"), "case_status_changes",
                        [column])
    op.create_index("ix_case_status_changes_case", "case_status_changes",
                    ["case_id", "kind", "changed_at"])

    op.create_table(
        "master_note_versions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cif", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("edited_by_id", sa.Integer(), nullable=True),
        sa.Column("edited_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["cif"], ["customers.cif"], onupdate="CASCADE",
                                ondelete="CASCADE",
                                name=op.f("fk_master_note_versions_cif_customers")),
        sa.ForeignKeyConstraint(["edited_by_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_master_note_versions_edited_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_master_note_versions")),
    )
    op.create_index("ix_master_note_versions_cif", "master_note_versions", ["cif", "edited_at"])
    # the notes the cases hold become the first version of each master note
    op.execute("INSERT INTO master_note_versions (cif, text, edited_at) "
               "SELECT cif, notes, updated_at FROM cases WHERE notes IS NOT NULL")


def downgrade():
    op.drop_table("master_note_versions")
    op.drop_table("case_status_changes")
    for column in CASE_COLUMNS:
        op.drop_index(op.f(f"ix_cases_{column}"), table_name="cases")
        op.drop_constraint(op.f(f"fk_cases_{column}_status_values"), "cases", type_="foreignkey")
        op.drop_column("cases", column)
    # a code an admin added goes back to the state the system knows it by
    op.execute("UPDATE cases SET processing_state = 'escalated' WHERE processing_state NOT IN ("
               + ", ".join(f"'{s}'" for s in OLD_PROCESSING_STATES) + ")")
    op.create_check_constraint(
        op.f("ck_cases_processing_state"), "cases",
        "processing_state IN (" + ", ".join(f"'{s}'" for s in OLD_PROCESSING_STATES) + ")")
    op.drop_table("status_values")
