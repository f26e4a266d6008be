"""Field work pages: the supervisor's live map (agents, customers, visits, routes), the review of
visits that could not be verified, visit planning, and the field agent's day."""
