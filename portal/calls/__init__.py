"""The agent's side of the call centre: status control in the nav, click-to-call, the outcome
of a call, manual call logging when the call centre is down, and call history per agent and day.

Registered in portal/app.py.
"""
