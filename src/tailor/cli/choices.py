"""What the command line offers, read from the registries: the help texts that list methods,
backends, tasks and embedders, and the argument types that parse ``--method`` once.

Listing a registry imports nothing heavy (its entries are lazy; method objects live in
modules that import what they build with only when they build), so ``tailor --help`` and
every subcommand's ``--help`` stay quick.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tailor.methods import MethodSpec, Need, Role

_ROLES: dict[str, str] = {"retrieval": "retrieval", "notes": "notes about the user (joined with '+')",
                          "modifier": "modifiers (joined with '+')", "whole": "used alone",
                          "recommender": "recommenders of ranking tasks (alone, or first: their top 20 reranked by "
                                         "the rest, as als+bm25)"}


def method_help(*, served: bool = False) -> str:
    """The methods by role (``served``: only those ``tailor serve`` serves)."""
    from tailor.methods import METHODS

    groups = []
    for role, methods in METHODS.by_role().items():
        names = [m.name for m in methods if not served or m.serve_refusal is None]
        if names:
            groups.append(f"{_ROLES[role]}: {', '.join(names)}")
    return "; ".join(groups)


def names_of_role(role: Role) -> str:
    from tailor.methods import METHODS

    return ", ".join(m.name for m in METHODS.by_role()[role])


def methods_needing(need: Need) -> str:
    from tailor.methods import METHODS

    return ", ".join(m.name for methods in METHODS.by_role().values() for m in methods if need in m.needs)


def method_descriptions() -> list[tuple[str, str, str]]:
    """(name, role, help line) of every method, for ``tailor methods``."""
    from tailor.methods import METHODS

    return [(m.name, m.role, m.help) for methods in METHODS.by_role().values() for m in methods]


def backend_help() -> str:
    from tailor.backends import BACKENDS

    return "; ".join(f"{name}: {BACKENDS.help(name)}" for name in BACKENDS.names())


def store_help() -> str:
    from tailor.store import STORES

    return "; ".join(f"{name}://: {STORES.help(name)}" for name in STORES.names())


def embedder_help() -> str:
    from tailor.embeddings import EMBEDDERS

    return ", ".join(EMBEDDERS.names())


def positive(text: str) -> int:
    """An argument of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_executor_options(parser: argparse.ArgumentParser, *, where: str, unit: str, threads: str) -> None:
    """``--executor``, ``--threads`` and ``--retries``, alike on every verb whose per-user work
    Ray can spread: ``where`` says what runs where (its help), ``unit`` what one Ray task
    is (``an adapter``, ``a shard``), ``threads`` what ``--threads`` sets when run here."""
    parser.add_argument("--executor", default="local", metavar="local|ray[:ADDRESS]", help=where)
    parser.add_argument("--threads", type=positive, default=None,
                        help=f"{threads}; with --executor ray, the CPUs and threads of each task (default: the "
                        "cluster's CPUs divided among the tasks)")
    parser.add_argument("--retries", type=count, default=2,
                        help=f"--executor ray: attempts after the first for {unit} whose task failed (default 2)")


def count(text: str) -> int:
    """An argument of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _parsed(parse: object, text: str) -> object:
    try:
        return parse(text)  # type: ignore[operator]
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def method_list(text: str) -> list[MethodSpec]:
    """``--method`` of ``tailor eval``: a comma-separated list of methods, parsed once."""
    from tailor.methods import parse_methods

    return _parsed(parse_methods, text)  # type: ignore[return-value]


def method(text: str) -> MethodSpec:
    """One method, parsed."""
    from tailor.methods import parse_method

    return _parsed(parse_method, text)  # type: ignore[return-value]


def rank_method(text: str) -> MethodSpec:
    """``--rank-method`` of ``tailor serve``: a method the rank route can rank with."""
    from tailor.methods import parse_rank_method

    return _parsed(parse_rank_method, text)  # type: ignore[return-value]


def serve_method(text: str) -> MethodSpec:
    """``--method`` of ``tailor serve``: one method that can be served."""
    from tailor.methods import parse_serve_method

    return _parsed(parse_serve_method, text)  # type: ignore[return-value]


__all__ = ["add_executor_options", "backend_help", "count", "embedder_help", "method", "method_descriptions",
           "method_help", "method_list", "methods_needing", "names_of_role", "positive", "rank_method", "serve_method", "store_help"]
