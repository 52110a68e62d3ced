"""The FastAPI application: for now a health check and a synchronous solve of an uploaded problem.

The solve endpoint takes the same fields as the spreadsheets (SCHEMA.md) as JSON; persistence,
roles and background jobs come with the service issue.
"""

from __future__ import annotations

from fastapi import FastAPI

import matcher

app = FastAPI(title="Linli 邻里", version=matcher.__version__,
              description="Matching volunteers, needs and partner merchants in a community.")


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness probe."""
    return {"status": "ok", "version": matcher.__version__}
