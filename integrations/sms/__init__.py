"""The SMS gateway: an HTTP JSON client (client.py); delivery reports come back by webhook
(portal/webhooks/sms.py). Wire format: docs/integrations.md, "SMS gateway"."""
