"""A strategy's daily run through the real message channel (issue 23 acceptance): the SMS the run
queues is rendered, sent through the sandbox SMS gateway and delivered on the case's timeline;
re-running the business date — then dispatching again — sends nothing twice."""

from __future__ import annotations

from sqlalchemy import func, select

from portal import clock
from portal.messages import dispatch
from portal.models import Message
from portal.strategies import operations, run
from tests.messages_support import bank_time, wait_until


def test_the_run_sms_goes_through_the_gateway_once(db, frozen_now, msg_customer, make_template,
                                                    sms_gateway, make_user):
    at = frozen_now(bank_time(0, 10, 30))
    make_template(code="SMS_NHAC")
    supervisor = make_user("supervisor")
    strategy = operations.create_strategy(db.session, supervisor, "NHAC", "Nhắc nợ")
    version = strategy.versions[0]
    segment = operations.add_segment(db.session, supervisor, version, "Quá hạn sớm",
                                     [{"field": "dpd", "op": "le", "value": "30"}], [])
    operations.add_step(db.session, supervisor, segment,
                        {"key": "dpd", "at_value": "10", "action": "sms",
                         "template_code": "SMS_NHAC"})
    operations.activate(db.session, supervisor, version, at)
    db.session.commit()

    day = clock.bank_today(at)
    counts = run.run_business_date(db.session, day, now=at)
    db.session.commit()
    assert counts["messages"] == 1  # msg_customer's loan is at DPD 12
    assert dispatch.dispatch_due(db.session, at, limit=50) == {"sent": 1}
    message = db.session.scalar(select(Message))
    assert (message.source, message.channel, message.status) == ("strategy", "sms", "sent")
    assert message.recipient == "+84912345678" and message.body.startswith("Kính gửi")
    assert message.provider_id in sms_gateway.gateway.messages

    def delivered():
        db.session.expire_all()
        return db.session.get(Message, message.id).status == "delivered"

    assert wait_until(delivered), "the delivery report did not arrive"

    again = run.run_business_date(db.session, day, now=at)
    db.session.commit()
    assert (again["assigned"], again["messages"]) == (0, 0)
    assert dispatch.dispatch_due(db.session, at, limit=50) == {}
    assert db.session.scalar(select(func.count()).select_from(Message)) == 1
    assert len(sms_gateway.gateway.messages) == 1
