"""Tenants' namespaces in a profile store.

The user ``alice`` of tenant ``acme`` is kept as ``"acme\\x1falice"``: the unit separator
can never occur in an id the server's API accepts, so two tenants' ``alice`` never
collide. Users outside any tenant keep their plain id. Personas built for one tenant carry
the same prefix (:mod:`tailor.personas.tenants`).
"""

from __future__ import annotations

import re

TENANT_SEPARATOR = "\x1f"
# Used with fullmatch: "$" would also match before a final newline.
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_tenant(tenant: str) -> str:
    """``tenant``, if it is a valid tenant name; raises :class:`ValueError` otherwise."""
    if not isinstance(tenant, str) or not TENANT_PATTERN.fullmatch(tenant):
        raise ValueError(f"tenant names are 1-64 characters of letters, digits, '.', '_' and '-', "
                         f"starting with a letter or digit; got {tenant!r}")
    return tenant


def store_user_id(tenant: str | None, user_id: str) -> str:
    """The profile store's id for ``user_id`` in ``tenant``'s namespace (its plain id
    outside any tenant)."""
    return user_id if tenant is None else f"{tenant}{TENANT_SEPARATOR}{user_id}"


def tenant_of(store_id: str) -> str | None:
    """The tenant whose namespace holds this store id (``None`` outside any tenant)."""
    tenant, separator, _ = store_id.partition(TENANT_SEPARATOR)
    return tenant if separator else None


__all__ = ["TENANT_PATTERN", "TENANT_SEPARATOR", "check_tenant", "store_user_id", "tenant_of"]
