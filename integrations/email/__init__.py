"""E-mail over SMTP (sender.py). Development and tests point it at the capturing sandbox
server (integrations/sandbox/smtp_server.py)."""
