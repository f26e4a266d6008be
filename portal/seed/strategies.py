"""The demo's collection strategy (issue 23): one active strategy with two segments, so that
`make run` shows a treatment path, its simulation and its daily run. Early arrears get an SMS
before and on the due date and the team's call queue from DPD 5; late arrears a letter at DPD
30, a field visit at 45 and a legal review at 90. A challenger takes 20% of the accounts and
calls them with more weight."""

from __future__ import annotations

import json

from psycopg import Connection

CODE = "DEMO_STANDARD"

# (segment name, conditions, exit conditions, steps: (key, at, action, template, weight))
SEGMENTS = (
    ("Quá hạn sớm (đến 30 ngày)", [{"field": "dpd", "op": "le", "value": "30"}],
     ["cured", "promise_pending", "plan_active", "placed"],
     (("dpd", -3, "sms", "SMS_REMINDER", 0), ("dpd", 0, "sms", "SMS_REMINDER", 0),
      ("dpd", 5, "call", None, 200))),
    ("Quá hạn muộn (trên 30 ngày)", [{"field": "dpd", "op": "gt", "value": "30"}],
     ["cured", "plan_active", "placed"],
     (("dpd", 30, "letter", "LETTER_DEMAND", 300), ("dpd", 45, "visit", None, 300),
      ("dpd", 90, "placement_review", None, 300))),
)


def ensure_demo_strategy(conn: Connection, supervisor_id: int | None, team_id: int | None,
                         activated_at) -> None:
    """Insert the demo strategy, active, unless one with its code exists."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO strategies (code, name, description, rank, created_by_id) "
                    "VALUES (%s, %s, %s, 100, %s) ON CONFLICT (code) DO NOTHING RETURNING id",
                    (CODE, "Chiến lược chuẩn", "Nhắc sớm bằng SMS, gọi từ DPD 5; thư, thăm "
                     "thực địa và xem xét pháp lý cho nợ quá hạn muộn.", supervisor_id))
        row = cur.fetchone()
        if row is None:
            return
        cur.execute("INSERT INTO strategy_versions (strategy_id, number, status, activated_at, "
                    "activated_by_id) VALUES (%s, 1, 'active', %s, %s) RETURNING id",
                    (row[0], activated_at, supervisor_id))
        version_id = cur.fetchone()[0]
        for position, (name, conditions, exits, steps) in enumerate(SEGMENTS, start=1):
            cur.execute("INSERT INTO strategy_segments (version_id, position, name, conditions, "
                        "exit_conditions) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                        (version_id, position, name, json.dumps(conditions), exits))
            segment_id = cur.fetchone()[0]
            cur.executemany(
                "INSERT INTO strategy_steps (segment_id, key, at_value, action, template_code, "
                "priority_weight, team_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [(segment_id, key, at, action, template, weight,
                  team_id if action == "call" else None)
                 for key, at, action, template, weight in steps])
        cur.executemany("INSERT INTO strategy_variants (version_id, position, name, is_champion, "
                        "split_pct, weight_delta) VALUES (%s, %s, %s, %s, %s, %s)",
                        [(version_id, 1, "Phương án chuẩn", True, 80, 0),
                         (version_id, 2, "Gọi sớm, ưu tiên cao hơn", False, 20, 100)])
