"""Payments: notifications from the payment system (signed webhook, exactly once), their
effects (loan balance, promise fulfilment, case, timeline, agents told), the refused-requests
log and reconciliation discrepancies for ops, and the agent's live payment panel.

- ``notifications``: check, store (with the PAYMENT_* event) or refuse a notification;
- ``effects``: the PAYMENT_* subscribers;
- ``reconcile``: the daily reconciliation against the payment system's report, and
  ``camt_import``: a camt.054 file imported by hand;
- ``discrepancies``: resolving a discrepancy, queueing a reconciliation; ``queries``: what the
  pages read; ``forms``; ``live``: the case's live payments;
- ``views``: ops pages (refused notifications, discrepancies) and the case's live partial.

The webhook route is portal/webhooks/payments.py; the payment system's client and the camt
parser are in integrations/payments/; the job in workers/jobs/payments.py.
"""
