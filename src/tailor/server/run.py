"""Running the server: uvicorn on the configured host and port."""

from __future__ import annotations

import gc
from typing import Any

from tailor.logs import configure_logging
from tailor.registry import require
from tailor.server.app import create_app
from tailor.server.config import ServeConfig
from tailor.server.protocol import timed_protocol


def serve(config: ServeConfig, *, log_level: str = "info") -> None:
    """Serve until interrupted. One process, one event loop; request work runs in a thread pool.
    Logs go to stderr as ``config.log_format`` from ``log_level`` up (tailor's and uvicorn's
    alike; ``info`` includes one line per request)."""
    uvicorn = require("uvicorn", "serve")
    configure_logging(config.log_format, log_level)
    one_blas_thread()
    app = create_app(config)
    # What is loaded by now (modules, the model, the store) lives as long as the process:
    # frozen out of the garbage collector's full passes, which then cost what requests
    # hold (the users' in-memory indexes keep plain tuples and arrays, which it skips).
    gc.collect()
    gc.freeze()
    # log_config=None: uvicorn keeps the handlers set above (and its access log, which
    # would show raw paths and so user ids, stays off).
    # The h11 protocol with a time limit on request heads (server/protocol.py); the body's is the app's.
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, access_log=False, log_config=None,
                timeout_graceful_shutdown=5, http=timed_protocol(config.header_timeout))


def one_blas_thread() -> Any:
    """Run numpy's BLAS on one thread in this process from now on; return the limiter
    (its ``restore_original_limits()`` undoes it).

    A request's vector products (memory, episode and record search: a few thousand rows
    by a few hundred) are small, and requests already run side by side in the thread
    pool: BLAS threads only wait for each other there. Measured with the echo backend on
    a 2-core machine: a user with 2,500 memories searched in 0.2 ms with one thread and
    up to 8 ms with two, and personalization's p99 for that user went from 6.9 ms to
    3.2 ms. numpy is loaded long before the server starts, so an environment variable
    would come too late; threadpoolctl sets the loaded library. The model's engines
    (torch, OpenVINO) keep their own threads."""
    threadpoolctl = require("threadpoolctl", "serve")
    return threadpoolctl.threadpool_limits(1, user_api="blas")


__all__ = ["one_blas_thread", "serve"]
