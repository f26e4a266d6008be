"""LOS, the loan origination system: JSON REST (bearer token), applications and their referees
(docs/integrations.md)."""
