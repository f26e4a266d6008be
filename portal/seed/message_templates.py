"""The demo's message templates (issue 23): an SMS reminder, an e-mail reminder and a letter,
in Vietnamese and English, so `make run` shows them on the templates page and strategies have
something to send."""

from __future__ import annotations

from psycopg import Connection

# (code, channel, name, subject_vi, subject_en, body_vi, body_en, include_vietqr)
DEFAULT_MESSAGE_TEMPLATES = (
    ("SMS_REMINDER", "sms", "Nhắc nợ SMS",
     None, None,
     "Kính gửi {customer_name}, khoản vay {account_number} có số tiền đến hạn {amount_due} "
     "vào ngày {due_date}. Vui lòng thanh toán đúng hạn. {pay_link}",
     "Dear {customer_name}, loan {account_number} has {amount_due} due on {due_date}. "
     "Please pay on time. {pay_link}", True),
    ("SMS_OVERDUE", "sms", "Thông báo quá hạn SMS",
     None, None,
     "{customer_name}: khoan vay {account_number} da qua han, so tien {amount_due}. "
     "Lien he {agent_name} de duoc ho tro.",
     "{customer_name}: loan {account_number} is overdue, {amount_due}. "
     "Contact {agent_name} for help.", False),
    ("EMAIL_REMINDER", "email", "Nhắc nợ qua e-mail",
     "Nhắc thanh toán khoản vay {account_number}",
     "Payment reminder for loan {account_number}",
     "Kính gửi Quý khách {customer_name},\n\nKhoản vay {account_number} của Quý khách có số "
     "tiền đến hạn {amount_due} vào ngày {due_date}.\n\n{payment_instructions}\n{pay_link}\n\n"
     "Cán bộ phụ trách: {agent_name}.\nTrân trọng,\nPhòng Thu hồi nợ",
     "Dear {customer_name},\n\nYour loan {account_number} has {amount_due} due on "
     "{due_date}.\n\n{payment_instructions}\n{pay_link}\n\nYour officer: {agent_name}.\n"
     "Kind regards,\nCollections", True),
    ("LETTER_DEMAND", "letter", "Thư đề nghị thanh toán",
     "Thư đề nghị thanh toán nợ quá hạn",
     "Demand for payment of an overdue debt",
     "Kính gửi Ông/Bà {customer_name},\n\nNgân hàng thông báo khoản vay {account_number} đã "
     "quá hạn với số tiền {amount_due} (ngày đến hạn {due_date}). Đề nghị Ông/Bà thanh toán "
     "trong vòng 7 ngày kể từ ngày nhận thư.\n\n{payment_instructions}\n\nMọi thắc mắc xin "
     "liên hệ cán bộ {agent_name}.",
     "Dear {customer_name},\n\nThe bank informs you that loan {account_number} is overdue "
     "by {amount_due} (due {due_date}). Please pay within 7 days of receiving this letter."
     "\n\n{payment_instructions}\n\nFor any question, contact {agent_name}.", True),
)


def ensure_message_templates(conn: Connection) -> None:
    """Insert the default message templates where missing (by code)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO message_templates (code, channel, name, subject_vi, subject_en, "
            "body_vi, body_en, include_vietqr) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (code) DO NOTHING", DEFAULT_MESSAGE_TEMPLATES)
