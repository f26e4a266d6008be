"""Copies of the database outside the running system (issue 24 §2, §3): masked copies for test
environments (masking.py, its registry of personal columns in personal.py), backups with a
checked manifest and their restore (backup.py), the PostgreSQL client tools matching a server
(pgtools.py); ``flask ops mask-copy|backup|restore`` (cli.py)."""
