"""Linli's HTTP service (FastAPI). The full API (resources, roles, jobs, ledger) is issue 3."""
