"""HTTP routes, one module per area, all under ``/v1``."""
