"""Backends: the models that answer generation requests.

``load_backend("default")``, ``load_backend("echo")``, ``load_backend("transformers:/path")``,
``load_backend("openai:http://127.0.0.1:8000/v1")``, ``load_backend("llamacpp:/path/model.gguf")``.
"""

from __future__ import annotations

import inspect
from typing import Any

from tailor.backends.base import Backend, apply_stop
from tailor.registry import Registry

BACKENDS = Registry(
    "backend",
    {
        "default": "tailor.backends.hf:DefaultBackend",
        "echo": "tailor.backends.echo:EchoBackend",
        "transformers": "tailor.backends.hf:TransformersBackend",
        "openai": "tailor.backends.openai:OpenAIBackend",
        "llamacpp": "tailor.backends.llamacpp:LlamaCppBackend",
    },
    group="tailor.backends",
    extras={"default": "hf", "transformers": "hf", "openai": "openai", "llamacpp": "llamacpp"},
)

# Backends whose spec carries an argument after the colon (a path or a URL).
_NEEDS_ARGUMENT = {
    "transformers": "a model directory, as in transformers:/path/to/model",
    "openai": "the server's base URL, as in openai:http://127.0.0.1:8000/v1",
}


def load_backend(spec: str, **options: Any) -> Backend:
    """A backend from its spec: ``name`` or ``name:argument`` (``transformers:PATH``)."""
    name, _, argument = spec.partition(":")
    factory = BACKENDS.load(name)
    if name in _NEEDS_ARGUMENT and not argument:
        raise ValueError(f"backend {name!r} needs {_NEEDS_ARGUMENT[name]}")
    # Options a backend does not take (batch size for the echo backend) are not its concern.
    accepted = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        options = {key: value for key, value in options.items() if key in accepted}
    if argument:
        return factory(argument, **options)  # type: ignore[no-any-return]
    return factory(**options)  # type: ignore[no-any-return]


__all__ = ["BACKENDS", "Backend", "apply_stop", "load_backend"]
