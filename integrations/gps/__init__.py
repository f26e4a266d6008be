"""The GPS tracking system: positions forwarded from the portal (batched, queued, retried, in
order), its own visit verification, and its route history. Wire formats: docs/integrations.md.

- ``client.GpsClient``: the REST client (X-API-Key).
- ``forward``: the backlog of stored positions not yet forwarded and the job body that drains it;
  ``forward.backlog()`` is the count the ops page shows.
- ``circuit``: a circuit breaker shared by every process (Redis), so a GPS system that is down is
  not called by every request.
"""
