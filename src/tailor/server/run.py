"""Running the server: uvicorn on the configured host and port."""

from __future__ import annotations

from tailor.registry import require
from tailor.server.app import create_app
from tailor.server.config import ServeConfig


def serve(config: ServeConfig, *, log_level: str = "info") -> None:
    """Serve until interrupted. One process, one event loop; request work runs in a thread pool."""
    uvicorn = require("uvicorn", "serve")
    app = create_app(config)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=5)


__all__ = ["serve"]
