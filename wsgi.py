"""WSGI entry point: ``gunicorn wsgi:app``; ``flask --app wsgi`` also gets the workers' commands
(``flask workers run|status|schedules``), which sit above the app."""

from portal import create_app
from workers.cli import commands as worker_commands

app = create_app()
for command in worker_commands:
    app.cli.add_command(command)
