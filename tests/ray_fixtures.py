"""A local Ray instance for the tests that spread work on Ray (training and evaluation executors).

:func:`local_ray` starts one with 2 CPUs and sends the calling test module by value to the
workers, which cannot import it (the fault hooks the tests inject are defined there).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest


def local_ray(module: str) -> Iterator[Any]:
    """Start a local Ray (stopping one another module left running), yield the ``ray``
    module, and stop it after; ``module``: the test module's ``__name__``."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # pragma: no cover (another module left one running)
        ray.shutdown()
    ray.cloudpickle.register_pickle_by_value(sys.modules[module])
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray
    ray.shutdown()
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[module])
