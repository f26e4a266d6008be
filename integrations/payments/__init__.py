"""The payment system: its daily transactions report (client) and the reconciliation of a
business date against the CRM's payments (reconcile). Real-time notifications arrive by webhook
(portal/webhooks/payments.py → portal.payments.notifications)."""
