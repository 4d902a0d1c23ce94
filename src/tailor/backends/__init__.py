"""Backends: the models that answer generation requests.

``load_backend("default")`` (through OpenVINO, int8 weights; ``default:fp32`` float32),
``load_backend("default-fp32")`` (the same model in float32 through transformers),
``load_backend("default-onnx")`` (through ONNX Runtime GenAI, float32; ``default-onnx:int4``),
``load_backend("openvino:/path")``, ``load_backend("onnx:/path")``, ``load_backend("echo")``, ``load_backend("transformers:/path")``,
``load_backend("openai:http://127.0.0.1:8000/v1")``, ``load_backend("llamacpp:/path/model.gguf")``,
and ``load_backend("ray:2:default")`` for any of them replicated on Ray actors.
"""

from __future__ import annotations

import inspect
from typing import Any

from tailor.backends.contract import Backend, apply_stop
from tailor.registry import Registry

BACKENDS = Registry(
    "backend",
    {
        "default": "tailor.backends.openvino:DefaultOpenVINOBackend",
        "default-fp32": "tailor.backends.hf:DefaultBackend",
        "default-onnx": "tailor.backends.onnx:DefaultOnnxBackend",
        "openvino": "tailor.backends.openvino:OpenVINOBackend",
        "onnx": "tailor.backends.onnx:OnnxGenAIBackend",
        "echo": "tailor.backends.echo:EchoBackend",
        "transformers": "tailor.backends.hf:TransformersBackend",
        "openai": "tailor.backends.openai:OpenAIBackend",
        "llamacpp": "tailor.backends.llamacpp:LlamaCppBackend",
        "ray": "tailor.backends.ray:RayBackend",
    },
    group="tailor.backends",
    extras={"default": "hf", "default-fp32": "hf", "default-onnx": "hf", "openvino": "hf", "onnx": "hf", "transformers": "hf", "openai": "openai",
            "llamacpp": "llamacpp", "ray": "ray"},
    helps={
        "default": "SmolLM2-135M-Instruct through OpenVINO, int8 weights (default:fp32 for float32)",
        "default-fp32": "the default model through transformers, float32 (the reference path)",
        "default-onnx": "the default model through ONNX Runtime GenAI (default-onnx:int4 for int4 weights)",
        "openvino": "openvino:PATH, a model folder exported with python -m tailor.backends.openvino",
        "onnx": "onnx:PATH, an ONNX Runtime GenAI model folder",
        "echo": "a scripted model for tests",
        "transformers": "transformers:PATH, any local Hugging Face causal LM",
        "openai": "openai:URL, an OpenAI-compatible server (vLLM, llama.cpp's)",
        "llamacpp": "llamacpp[:PATH], a GGUF file through llama.cpp",
        "ray": "ray:N:INNER, N replicas of another backend on Ray actors",
    },
)

# Backends whose spec carries an argument after the colon (a path or a URL).
_NEEDS_ARGUMENT = {
    "transformers": "a model directory, as in transformers:/path/to/model",
    "onnx": "an ONNX Runtime GenAI model directory, as in onnx:/path/to/model",
    "openvino": "a model directory exported for OpenVINO (python -m tailor.backends.openvino), "
                "as in openvino:/path/to/model",
    "openai": "the server's base URL, as in openai:http://127.0.0.1:8000/v1",
    "ray": "a replica count and an inner backend, as in ray:2:default",
}


def load_backend(spec: str, **options: Any) -> Backend:
    """A backend from its spec: ``name`` or ``name:argument`` (``transformers:PATH``).

    ``ray:N:INNER`` runs ``N`` replicas of the backend ``INNER`` (itself a spec, such as
    ``default`` or ``transformers:PATH``) on Ray actors; see :class:`tailor.backends.ray.RayBackend`.
    Options the ray backend does not take itself go to each replica's inner backend.
    """
    name, argument, factory = resolve_spec(spec)
    if name == "ray":
        replicas, inner = parse_ray_argument(argument)
        resolve_spec(inner)  # an unknown or incomplete inner spec fails here, before Ray starts
        return factory(inner, replicas, **options)  # type: ignore[no-any-return]
    # Options a backend does not take (batch size for the echo backend) are not its concern.
    accepted = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        options = {key: value for key, value in options.items() if key in accepted}
    if argument:
        return factory(argument, **options)  # type: ignore[no-any-return]
    return factory(**options)  # type: ignore[no-any-return]


def load_backend_on(spec: str, threads: int | None = None, **options: Any) -> Backend:
    """:func:`load_backend`, on ``threads`` threads where the backend takes a thread count
    (``None``: its own default; a thread count in ``options`` is kept)."""
    if threads is not None:
        from tailor.backends.ray import with_thread_count

        options = with_thread_count(resolve_spec(spec)[2], options, threads)
    return load_backend(spec, **options)


def resolve_spec(spec: str) -> tuple[str, str, Any]:
    """``spec`` split into its name and argument, with the factory its name stands for.

    Raises :class:`ValueError` for an unknown name (the message lists the valid ones) or a
    missing argument, and :class:`tailor.registry.MissingExtraError` when the backend's
    module needs a package that is not installed.
    """
    name, _, argument = spec.partition(":")
    factory = BACKENDS.load(name)
    if name in _NEEDS_ARGUMENT and not argument:
        raise ValueError(f"backend {name!r} needs {_NEEDS_ARGUMENT[name]}")
    return name, argument, factory


def parse_ray_argument(argument: str) -> tuple[int, str]:
    """The replica count and the inner spec of a ``ray:N:INNER`` spec, from its ``N:INNER`` part."""
    count, _, inner = argument.partition(":")
    example = "as in ray:2:default or ray:4:transformers:/models/x"
    if not (count.isascii() and count.isdigit()) or int(count) < 1:
        raise ValueError(f"backend spec 'ray:{argument}': the replica count must be a whole number of at least 1, "
                         f"got {count!r} ({example})")
    if not inner:
        raise ValueError(f"backend spec 'ray:{argument}' needs an inner backend after the replica count ({example})")
    if inner.partition(":")[0] == "ray":
        raise ValueError(f"backend spec 'ray:{argument}': the inner backend cannot be another ray backend")
    return int(count), inner


__all__ = ["BACKENDS", "Backend", "apply_stop", "load_backend", "load_backend_on", "parse_ray_argument", "resolve_spec"]
