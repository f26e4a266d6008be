"""Outbound messages: templates, contact rules for messages, the channels (SMS gateway,
SMTP, letters for the print vendor) and the one-off message from the case view."""
