"""W4 card system: JSON REST (API key), cards and their W4 collection case
(docs/integrations.md)."""
