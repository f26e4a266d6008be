"""The call centre (CTI): outbound REST client (agent status, click-to-call, call list).

Inbound events (signed webhooks) are received by ``portal/webhooks/cti.py``; wire formats in
docs/integrations.md, "Call centre".
"""
