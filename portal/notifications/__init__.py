"""Notifications: the user's inbox page, mark read, the unread counter in the top bar, and the
event subscribers that fill inboxes (imported here, so the app, the relay and every worker —
which all build the app — know them)."""
