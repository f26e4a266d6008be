"""T24 core banking: per business date, one file per entity (JSON Lines, JSON or XML) and a
manifest, dropped in an inbox directory (docs/integrations.md)."""
