"""Tenants' namespaces in a profile store.

The user ``alice`` of tenant ``acme`` is kept as ``"acme\\x1falice"``: the unit separator
can never occur in an id the server's API accepts, so two tenants' ``alice`` never
collide. Users outside any tenant keep their plain id. Personas built for one tenant carry
the same prefix (:mod:`tailor.personas.tenants`).
"""

from __future__ import annotations

TENANT_SEPARATOR = "\x1f"


def tenant_of(store_id: str) -> str | None:
    """The tenant whose namespace holds this store id (``None`` outside any tenant)."""
    tenant, separator, _ = store_id.partition(TENANT_SEPARATOR)
    return tenant if separator else None


__all__ = ["TENANT_SEPARATOR", "tenant_of"]
