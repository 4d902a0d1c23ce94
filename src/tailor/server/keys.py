"""API keys and tenants: who may call the server, and which users they can see.

A key is ``tailor-<key id>.<secret>``: the public id finds the row, the 256-bit random
secret proves possession. Only ``sha256(salt || secret)`` is stored, with a random salt
per key, and it is compared in constant time. A slow password hash (scrypt) buys nothing
for a random 256-bit secret, and would cost every request milliseconds.

A key is either an *admin* key (sees every user) or a *tenant* key (sees only its
tenant's users). Tenants are namespaces: the user ``alice`` of tenant ``acme`` is kept
in the profile store as ``"acme\\x1falice"`` (the unit separator can never occur in an id
the API accepts), so two tenants' ``alice`` never collide and a tenant key cannot even
name another tenant's user (:mod:`tailor.store.tenants`). Users outside any tenant
(written by an admin key, or with the store's Python API) keep their plain id.

The table ``api_keys`` lives in the profile store (SQLite or PostgreSQL, declared with its
schema) and holds no user data.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from tailor.store import SQLProfileStore
from tailor.store.checks import utc_now
from tailor.store.tenants import check_tenant

# Used with fullmatch: "$" would also match before a final newline.
_KEY = re.compile(r"tailor-([0-9a-f]{16})\.([A-Za-z0-9_-]{20,100})")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an admin (``tenant`` ``None`` unless they chose one), or a tenant's key.
    ``key_id`` is ``None`` when the server runs open (no keys exist)."""

    key_id: str | None
    tenant: str | None
    admin: bool


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    tenant: str | None
    admin: bool
    created_at: str
    revoked_at: str | None


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


class KeyStore:
    """Creates, verifies, lists and revokes API keys kept in the profile store."""

    def __init__(self, store: SQLProfileStore) -> None:
        self.store = store

    def create(self, *, tenant: str | None = None, admin: bool = False) -> tuple[KeyInfo, str]:
        """A new key; returns its info and the key itself (shown once, never stored)."""
        if admin == (tenant is not None):
            raise ValueError("a key is either for one tenant (tenant=NAME) or an admin key (admin=True)")
        if tenant is not None:
            check_tenant(tenant)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        created = utc_now()
        self.store.add_api_key(key_id, tenant, admin, salt, _digest(salt, secret), created)
        return KeyInfo(key_id, tenant, admin, created, None), f"tailor-{key_id}.{secret}"

    def any_active(self) -> bool:
        """Whether any unrevoked key exists (then every request must carry one)."""
        return self.store.has_active_api_key()

    def verify(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; ``None`` otherwise."""
        match = _KEY.fullmatch(key)
        if match is None:
            return None
        key_id, secret = match.groups()
        row = self.store.active_api_key(key_id)
        if row is None:
            return None
        tenant, admin, salt, digest = row
        if not hmac.compare_digest(_digest(salt, secret), digest):
            return None
        return Principal(key_id=key_id, tenant=tenant, admin=admin)

    def list(self) -> list[KeyInfo]:
        return [KeyInfo(*row) for row in self.store.list_api_keys()]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key; return whether an active key of that id existed."""
        return self.store.revoke_api_key(key_id, utc_now())


__all__ = ["KeyInfo", "KeyStore", "Principal"]
