"""Representation learning per user: LoRA adapters (OPPU-style) and user embeddings as soft prompts.

- :mod:`tailor.adapters.store`: adapters kept in the profile store's SQLite file, deleted
  with their user by cascade.
- :mod:`tailor.adapters.train`: the LoRA trainer (task-level adapter, then per-user or
  per-persona adapters on top of it).
- :mod:`tailor.adapters.soft_prompt`: the ``user-embedding`` projector.
- :mod:`tailor.adapters.runtime`: which adapter a user gets (user -> persona -> global ->
  none) and the LRU of loaded adapters on a backend's model.
  ``tailor train-adapter`` (:mod:`tailor.training.jobs`) trains them.
- :mod:`tailor.adapters.export`: the served adapters as PEFT folders for a multi-LoRA engine
  (``tailor adapters export``), named without user ids.

Importing this package imports neither torch nor peft; the modules that need them load
them on first use (``pip install 'tailor-llm[peft]'``).
"""

from __future__ import annotations

from tailor.adapters.store import GLOBAL_OWNER, AdapterInfo, AdapterKey, AdapterStore, StoredAdapter, open_adapter_store

__all__ = ["GLOBAL_OWNER", "AdapterInfo", "AdapterKey", "AdapterStore", "StoredAdapter", "open_adapter_store"]
