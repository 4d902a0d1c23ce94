"""Served adapters as PEFT folders, for engines that batch many LoRAs (vLLM, SGLang).

``tailor adapters export --format peft --out DIR`` writes every adapter that serves someone
(:func:`export_peft`): what :class:`~tailor.adapters.runtime.AdapterResolver` picks for
each user of the store (their own adapter, else their persona's, else the global one) and
for a request without a user. An adapter trained on top of the global one is written with
it summed in (:func:`tailor.adapters.lora.compose`), since an engine applies one LoRA per
request. Each folder is what PEFT's ``save_pretrained`` writes: ``adapter_config.json``
(PEFT's own ``LoraConfig``) and ``adapter_model.safetensors``, keyed as PEFT keys them.

Names: a folder is named by :func:`adapter_name`, a digest of the weights it holds
(``tailor-`` and 16 hex digits). No user id goes into a name or into the manifest, and
nothing maps names back to users: the server finds a user's adapter the way it always
does, from the store, and sends :func:`adapter_name` of it as the request's ``model``
(:meth:`tailor.backends.openai.OpenAIBackend.with_adapters`). Equal weights share a folder;
a retrained adapter gets a new name, so an engine never serves stale weights under a
current name. ``tailor-adapters.json`` lists each folder's adapter level (``user``,
``persona:ID``, ``global``, ``soup``), the digests it was made from, its rank and how many
users it serves.

Writes are atomic: a folder is written beside its place and renamed into it, the manifest
is replaced in one rename. Folders already there are kept (same name, same weights), so a
second export writes nothing; folders the previous manifest listed that serve nobody now
are removed. Nothing else in the folder is touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from tailor.adapters.lora import LoRAWeights
from tailor.adapters.runtime import AdapterResolver, LoRAChoice, Resolution
from tailor.adapters.serving import resolver_options, served_task
from tailor.adapters.store import AdapterStore
from tailor.registry import require

__all__ = ["MANIFEST", "ExportReport", "ExportedAdapter", "adapter_name", "export_peft", "write_peft"]

MANIFEST = "tailor-adapters.json"
NAME_PREFIX = "tailor-"
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
Status = Literal["written", "up to date"]


def adapter_name(choice: LoRAChoice) -> str:
    """The engine's name for an adapter: ``tailor-`` and 16 hex digits of a digest of the
    stacked (or merged) adapters' own digests. The same everywhere it is computed; no user id
    goes into it."""
    return NAME_PREFIX + hashlib.sha256(choice.name.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ExportedAdapter:
    """One folder of an export: its name, the level it serves at, what it was made from."""

    name: str
    adapter: str
    """``user``, ``soup``, ``persona:ID`` or ``global`` (what ``X-Tailor-Adapter`` says)."""
    stack: tuple[str, ...]
    """The digests of the stored adapters summed into it, bottom first (a soup: its poles)."""
    rank: int
    users: int
    """How many of the store's users it serves (a request without a user adds none)."""
    status: Status = "written"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "adapter": self.adapter, "stack": list(self.stack), "rank": self.rank,
                "users": self.users}


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_peft` did."""

    out: Path
    task: str | None
    prompt: str | None
    base_model: Mapping[str, str]
    adapters: tuple[ExportedAdapter, ...]
    removed: tuple[str, ...] = ()
    users: int = 0
    base_users: int = 0
    """Users that get no adapter (the base model)."""
    base_model_name: str = ""
    """``base_model_name_or_path`` in every adapter_config.json."""

    @property
    def max_rank(self) -> int:
        return max((a.rank for a in self.adapters), default=0)

    def manifest(self) -> dict[str, Any]:
        """The manifest's content: no user ids, nothing that changes when nothing changed."""
        return {"format": "peft", "task": self.task, "prompt": self.prompt, "base_model": dict(self.base_model),
                "base_model_name": self.base_model_name, "max_rank": self.max_rank, "users": self.users,
                "base_users": self.base_users, "adapters": [a.to_dict() for a in self.adapters]}

    def to_json(self) -> dict[str, Any]:
        return {**self.manifest(), "out": str(self.out), "manifest": str(self.out / MANIFEST),
                "written": [a.name for a in self.adapters if a.status == "written"],
                "up_to_date": [a.name for a in self.adapters if a.status == "up to date"],
                "removed": list(self.removed)}


def write_peft(weights: LoRAWeights, folder: str | os.PathLike[str], *, base_model_name: str) -> None:
    """Write ``weights`` as PEFT saves a LoRA: PEFT's ``LoraConfig`` in ``adapter_config.json``
    and the tensors, keyed as PEFT keys them, in ``adapter_model.safetensors``."""
    safetensors_torch = require("safetensors.torch", "hf")
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    config = weights.shape.peft_config(inference=True)
    config.base_model_name_or_path = base_model_name
    config.task_type = "CAUSAL_LM"
    if float(config.lora_alpha).is_integer():
        config.lora_alpha = int(config.lora_alpha)  # as PEFT writes a trained adapter's
    config.save_pretrained(str(target))
    tensors = {key: value.detach().contiguous() for key, value in sorted(weights.to_peft().items())}
    safetensors_torch.save_file(tensors, str(target / WEIGHTS_FILE), metadata={"format": "pt"})


def export_peft(store: AdapterStore, out: str | os.PathLike[str], *, adapter_task: str = "auto",
                base_model_name: str | None = None,
                progress: Callable[[ExportedAdapter], None] | None = None) -> ExportReport:
    """Write every adapter that serves someone in ``store`` as a PEFT folder in ``out`` (see
    the module docstring); ``adapter_task`` as ``tailor serve --adapter-task`` takes it.
    ``base_model_name`` goes into each ``adapter_config.json`` as ``base_model_name_or_path``
    (default: the path of the model the adapters were trained on); vLLM's filesystem resolver
    loads an adapter only when it equals the name the engine serves the base model under.
    ``progress`` is called with each adapter as it is written or found up to date."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file; give a folder for the PEFT adapters")
    task = served_task(store, adapter_task)
    users = store.profiles.list_users()
    if task is None:
        report = ExportReport(folder, None, None, {}, (), users=len(users), base_users=len(users))
        folder.mkdir(parents=True, exist_ok=True)
        return _finish(report, folder)
    options = resolver_options(task)
    resolver = AdapterResolver(store, task, **options)
    # A request without a user is served too (the global adapter), so it counts as no user.
    served: dict[str, tuple[Resolution, LoRAChoice, int]] = {}
    base_users = 0
    for user_id in [None, *users]:
        resolution = resolver.resolve(user_id)
        counted = 0 if user_id is None else 1
        if resolution.choice is None:
            base_users += counted
            continue
        name = adapter_name(resolution.choice)
        _, _, count = served.get(name, (resolution, resolution.choice, 0))
        served[name] = (resolution, resolution.choice, count + counted)
    identity = _one_base_model(store, [resolution for resolution, _, _ in served.values()])
    name_of_base = base_model_name or identity.get("path") or identity.get("name", "")
    folder.mkdir(parents=True, exist_ok=True)
    exported = []
    for name in sorted(served):
        resolution, choice, count = served[name]
        place = folder / name
        digests = tuple(info.digest for info in (store.info(key) for key in resolution.stack) if info is not None)
        if _complete(place, name_of_base):
            rank = int(json.loads((place / CONFIG_FILE).read_text(encoding="utf-8"))["r"])
            adapter = ExportedAdapter(name, resolution.label, digests, rank, count, "up to date")
        else:
            weights = choice.load()
            _write_atomically(weights, place, name_of_base)
            adapter = ExportedAdapter(name, resolution.label, digests, weights.shape.rank, count)
        exported.append(adapter)
        if progress is not None:
            progress(adapter)
    report = ExportReport(folder, task, resolver.prompt, identity, tuple(exported),
                          users=len(users), base_users=base_users, base_model_name=name_of_base)
    return _finish(report, folder)


def _one_base_model(store: AdapterStore, resolutions: list[Resolution]) -> dict[str, str]:
    """The base model every served adapter was trained on; refuses a mix (an engine runs one)."""
    seen: dict[str, tuple[str, dict[str, str]]] = {}
    for resolution in resolutions:
        for key in resolution.stack:
            info = store.info(key)
            if info is not None:
                identity = dict(info.base_model)
                seen.setdefault(identity.get("fingerprint", ""), (str(key), identity))
    if len(seen) > 1:
        listed = "; ".join(f"{key} on {identity.get('path')}" for key, identity in seen.values())
        raise ValueError(f"the served adapters were trained on {len(seen)} different base models ({listed}); an "
                         "engine serves one base model: retrain them on one with tailor train-adapter")
    return next(iter(seen.values()))[1] if seen else {}


def _complete(place: Path, base_model_name: str) -> bool:
    """Whether ``place`` already holds this adapter for the same base model name (its name is
    its weights' digest, so an existing folder holds the same weights)."""
    config = place / CONFIG_FILE
    if not (config.is_file() and (place / WEIGHTS_FILE).is_file()):
        return False
    try:
        return bool(json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path") == base_model_name)
    except ValueError:
        return False


def _write_atomically(weights: LoRAWeights, place: Path, base_model_name: str) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{place.name}.", dir=place.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's is 0700: an engine running as another user must read it
        write_peft(weights, staging, base_model_name=base_model_name)
        if place.exists():  # an older export of it for another base model name
            shutil.rmtree(place)
        os.replace(staging, place)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _finish(report: ExportReport, folder: Path) -> ExportReport:
    """Remove the folders the previous manifest listed that serve nobody now; write the manifest."""
    manifest = folder / MANIFEST
    kept = {adapter.name for adapter in report.adapters}
    removed = []
    if manifest.is_file():
        try:
            previous = json.loads(manifest.read_text(encoding="utf-8")).get("adapters", [])
        except ValueError:
            previous = []
        for entry in previous:
            name = entry.get("name") if isinstance(entry, dict) else None
            # Only names of ours, and never a path outside the folder.
            if (isinstance(name, str) and name.startswith(NAME_PREFIX) and name not in kept
                    and Path(name).name == name and (folder / name).is_dir()):
                shutil.rmtree(folder / name)
                removed.append(name)
    descriptor, staging = tempfile.mkstemp(dir=folder, prefix=f".{MANIFEST}.")
    try:
        os.chmod(staging, 0o644)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(report.manifest(), handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(staging, manifest)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return replace(report, removed=tuple(sorted(removed)))
