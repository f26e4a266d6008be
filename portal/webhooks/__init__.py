"""Signed inbound webhooks from external systems (payment system, call centre).

Webhooks are not browser forms: CSRF does not apply (they are exempted here); they authenticate
by HMAC signature instead (portal/signing.py). Each system's routes live in their own
module, imported at the bottom so they register on ``bp``.
"""
