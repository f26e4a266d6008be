"""The JSON API (/api/v1): API tokens or a logged-in session, errors as JSON."""
