"""Job entry points, one module per area. Each is wrapped with ``workers.context.job``."""
