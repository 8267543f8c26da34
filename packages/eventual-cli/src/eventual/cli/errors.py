"""What every part of the CLI shares, kept free of heavy imports (httpx, uvicorn)."""

from __future__ import annotations

DEFAULT_URL = "http://127.0.0.1:3111"
URL_ENV = "EVENTUAL_URL"
SERVICE_ENV = "EVENTUAL_SERVICE"


class CliError(Exception):
    """An error the CLI prints as one red line before exiting with status 1."""
