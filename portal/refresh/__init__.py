"""Refresh one customer now, from the case view or the command line: a feature above both the
cases (whose page shows the button and the change panel) and the integrations (which fetch and
apply each source: integrations/refresh.py).

- ``operations``: rate limits on the product clock, the refresh, its audit row and the lines
  of the change panel.
- ``views``: ``POST /cases/<cif>/refresh`` (on the cases blueprint: ``cases.refresh_customer``).
- ``cli``: ``flask cases refresh-customer <cif>``.
"""
