"""``tailor serve``: an OpenAI-compatible chat API personalized per user, with a user data
API, per-user memory, API keys and tenants. See docs/serving.md.

``create_app`` needs the ``serve`` extra (FastAPI) and is imported on first use, so that
``tailor keys`` and the config types stay light.
"""

from __future__ import annotations

from typing import Any

from tailor.server.config import Limits, ServeConfig

__all__ = ["Limits", "ServeConfig", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tailor.server.app import create_app

        return create_app
    if name == "serve":
        from tailor.server.run import serve

        return serve
    raise AttributeError(f"module 'tailor.server' has no attribute {name!r}")
