"""User embeddings as soft prompts (PPlug / User-LLM style): the ``user-embedding`` method.

For an input, the user's vector is a relevance-weighted average of their history items'
embeddings: weights are a softmax over the cosine similarity of each item to the input
(temperature ``temperature``). A small trained network (the projector) turns that vector
into ``virtual_tokens`` vectors of the LLM's embedding size, which are placed before the
prompt's token embeddings; the LLM itself stays frozen.

Item embeddings come from an embedder of :mod:`tailor.embeddings` — ``minilm``
(all-MiniLM-L6-v2) for real runs, ``hashing`` in tests — or, with ``embedder="llm"``, from
the frozen LLM itself: the mean of its input token embeddings over the item's text (no
extra model; weaker, since those embeddings are not trained to be pooled).

The projector is trained on the training users: for each of their history items, the
item's output is the target, the item's input is the prompt, and the user's *other* items
form the context that the user vector is pooled from (the item itself is left out, or the
vector would carry the answer). It is stored as a global ``soft-prompt`` adapter.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tailor.adapters.data import TrainingPair, encode_pairs, training_pairs
from tailor.adapters.identity import load_frozen_base
from tailor.registry import require
from tailor.tasks.spec import TaskSpec
from tailor.types import HistoryRecord, Profile, check_positive_ints

__all__ = ["LLMTokenEmbedder", "SoftPromptConfig", "SoftPromptModel", "SoftPromptTrainer", "user_vector"]


@dataclass(frozen=True)
class SoftPromptConfig:
    """Hyperparameters of the user-embedding projector (saved beside its weights)."""

    embedder: str = "minilm"
    """An embedder of :data:`tailor.embeddings.EMBEDDERS`, or ``"llm"`` (the LLM's own token embeddings)."""
    virtual_tokens: int = 4
    hidden: int = 128
    temperature: float = 0.1
    steps: int = 100
    batch_size: int = 4
    learning_rate: float = 1e-3
    max_input_tokens: int = 48
    max_output_tokens: int = 32
    max_items: int | None = 100
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_ints(self, ("virtual_tokens", "hidden", "steps", "batch_size", "max_input_tokens",
                                   "max_output_tokens"), where="SoftPromptConfig")
        if not self.temperature > 0 or not self.learning_rate > 0:
            raise ValueError("SoftPromptConfig.temperature and learning_rate must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SoftPromptConfig:
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})


def user_vector(query: np.ndarray, items: np.ndarray, temperature: float) -> np.ndarray:
    """The softmax(cosine / temperature)-weighted mean of ``items`` (unit rows) for ``query``.

    Zeros when the user has no items.
    """
    if items.size == 0:
        return np.zeros(query.shape[-1], dtype=np.float32)
    scores = items @ query / temperature
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    return (weights @ items).astype(np.float32)


class LLMTokenEmbedder:
    """Texts as the mean of a language model's input token embeddings, L2-normalized.

    The fallback item embedding when no sentence embedder is installed: it needs nothing
    beyond the LLM already loaded. ``name`` carries the model's fingerprint, since a store
    keys vectors by it.
    """

    def __init__(self, model: Any, tokenizer: Any, fingerprint: str, *, max_tokens: int = 128) -> None:
        self.torch = require("torch", "hf")
        self.embeddings = model.get_input_embeddings()
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.dim = int(self.embeddings.weight.shape[1])
        self.name = f"llm-mean-{fingerprint}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self.torch.no_grad():
            for i, text in enumerate(texts):
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"][: self.max_tokens]
                if ids:
                    rows[i] = self.embeddings(self.torch.tensor(ids)).mean(dim=0).float().numpy()
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        np.divide(rows, norms, out=rows, where=norms > 0)
        return rows


def load_item_embedder(name: str, model: Any = None, tokenizer: Any = None, fingerprint: str = "") -> Any:
    """The embedder a projector was trained with: a registry name, or ``"llm"``."""
    if name == "llm":
        if model is None or tokenizer is None:
            raise ValueError("the llm embedder needs the language model and its tokenizer")
        return LLMTokenEmbedder(model, tokenizer, fingerprint)
    from tailor.embeddings import load_embedder

    return load_embedder(name)


class SoftPromptModel:
    """The projector: a user vector -> ``virtual_tokens`` soft-prompt embeddings."""

    def __init__(self, input_dim: int, output_dim: int, config: SoftPromptConfig, *,
                 init_embedding: Any = None) -> None:
        torch = require("torch", "hf")
        self.torch = torch
        self.config = config
        self.input_dim, self.output_dim = input_dim, output_dim
        torch.manual_seed(config.seed)
        self.network = torch.nn.Sequential(
            torch.nn.Linear(input_dim, config.hidden),
            torch.nn.GELU(),
            torch.nn.Linear(config.hidden, config.virtual_tokens * output_dim),
        )
        with torch.no_grad():
            # Start near "an average token", small per-user variation: the frozen LLM first
            # sees something like ordinary input, and training moves it from there.
            self.network[2].weight.mul_(0.1)
            if init_embedding is not None:
                self.network[2].bias.copy_(init_embedding.float().repeat(config.virtual_tokens))

    def __call__(self, vectors: Any) -> Any:
        """``(batch, input_dim)`` -> ``(batch, virtual_tokens, output_dim)``."""
        out = self.network(vectors)
        return out.view(vectors.shape[0], self.config.virtual_tokens, self.output_dim)

    def prefix(self, vector: np.ndarray) -> Any:
        """The soft prompt of one user vector: ``(virtual_tokens, output_dim)``."""
        with self.torch.no_grad():
            return self(self.torch.from_numpy(np.asarray(vector, dtype=np.float32)).unsqueeze(0))[0]

    def to_bytes(self) -> bytes:
        safetensors_torch = require("safetensors.torch", "hf")
        state = {key: value.detach().contiguous() for key, value in self.network.state_dict().items()}
        return bytes(safetensors_torch.save(state))

    @classmethod
    def from_bytes(cls, data: bytes, input_dim: int, output_dim: int, config: SoftPromptConfig) -> SoftPromptModel:
        safetensors_torch = require("safetensors.torch", "hf")
        model = cls(input_dim, output_dim, config)
        model.network.load_state_dict(safetensors_torch.load(bytes(data)))
        model.network.eval()
        return model


@dataclass
class _UserItems:
    pairs: list[TrainingPair]
    documents: np.ndarray
    queries: np.ndarray


class SoftPromptTrainer:
    """Trains a projector against a frozen language model, loaded once."""

    def __init__(self, model_dir: str | os.PathLike[str], *, threads: int | None = None) -> None:
        base = load_frozen_base(model_dir, threads=threads)
        self.torch, self.model_dir, self.identity = base.torch, base.model_dir, base.identity
        self.tokenizer, self.model = base.tokenizer, base.model

    def embedder(self, config: SoftPromptConfig) -> Any:
        return load_item_embedder(config.embedder, self.model, self.tokenizer, self.identity["fingerprint"])

    def _user_items(self, task: TaskSpec, records: Sequence[HistoryRecord], embedder: Any,
                    config: SoftPromptConfig) -> _UserItems | None:
        by_id = {r.id: r for r in records}
        pairs = training_pairs(task, records, max_items=config.max_items)
        if len(pairs) < 2:  # the context of an item is the user's other items
            return None
        documents = embedder.embed([task.document(by_id[p.record_id]) for p in pairs])
        queries = embedder.embed([task.query(p.input) for p in pairs])
        return _UserItems(pairs, documents, queries)

    def loss(self, projector: SoftPromptModel, task: TaskSpec, pairs: Sequence[TrainingPair],
             vectors: np.ndarray, config: SoftPromptConfig) -> Any:
        """Mean loss per target token of ``pairs`` with soft prompts from ``vectors``."""
        torch = self.torch
        encoded = encode_pairs(task, pairs, self.tokenizer, max_input_tokens=config.max_input_tokens,
                               max_output_tokens=config.max_output_tokens)
        prefixes = projector(torch.from_numpy(np.asarray(vectors, dtype=np.float32)))
        n = config.virtual_tokens
        pad = self.tokenizer.pad_token_id
        width = max(len(e.ids) for e in encoded)
        ids = torch.tensor([list(e.ids) + [pad] * (width - len(e.ids)) for e in encoded])
        attention = torch.tensor([[1] * (n + len(e.ids)) + [0] * (width - len(e.ids)) for e in encoded])
        embeds = torch.cat([prefixes, self.model.get_input_embeddings()(ids)], dim=1)
        hidden = self.model.model(inputs_embeds=embeds, attention_mask=attention, use_cache=False).last_hidden_state
        rows, positions, targets = [], [], []
        for row, e in enumerate(encoded):
            for position in range(e.prompt_length, len(e.ids)):
                rows.append(row)
                positions.append(n + position - 1)
                targets.append(e.ids[position])
        logits = self.model.get_output_embeddings()(hidden[torch.tensor(rows), torch.tensor(positions)])
        return torch.nn.functional.cross_entropy(logits.float(), torch.tensor(targets))

    def train(self, task: TaskSpec, profiles: Sequence[Profile], config: SoftPromptConfig, *,
              progress: Callable[[int, int, float], None] | None = None) -> tuple[SoftPromptModel, dict[str, Any]]:
        """Train a projector on ``profiles``' history items; return it and training facts."""
        torch = self.torch
        began = time.perf_counter()
        embedder = self.embedder(config)
        users = {}
        for profile in profiles:
            items = self._user_items(task, profile.records, embedder, config)
            if items is not None:
                users[profile.user_id] = items
        if not users:
            raise ValueError("no training user has two or more usable history items")
        embeddings = self.model.get_input_embeddings().weight
        projector = SoftPromptModel(embedder.dim, int(embeddings.shape[1]), config,
                                    init_embedding=embeddings.mean(dim=0).detach())
        optimizer = torch.optim.AdamW(projector.network.parameters(), lr=config.learning_rate)
        examples = [(user_id, i) for user_id, items in users.items() for i in range(len(items.pairs))]
        shuffler = random.Random(config.seed)
        losses: list[float] = []
        with torch.enable_grad():
            for step in range(config.steps):
                batch = shuffler.sample(examples, min(config.batch_size, len(examples)))
                pairs, vectors = [], []
                for user_id, i in batch:
                    items = users[user_id]
                    others = np.delete(items.documents, i, axis=0)
                    pairs.append(items.pairs[i])
                    vectors.append(user_vector(items.queries[i], others, config.temperature))
                loss = self.loss(projector, task, pairs, np.stack(vectors), config)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
                if progress is not None:
                    progress(step + 1, config.steps, losses[-1])
        projector.network.eval()
        window = max(1, min(10, len(losses) // 4))
        facts = {"users": len(users), "items": len(examples), "steps": config.steps,
                 "seconds": round(time.perf_counter() - began, 2), "embedder_name": embedder.name,
                 "embedder_dim": embedder.dim, "first_loss": float(np.mean(losses[:window])),
                 "last_loss": float(np.mean(losses[-window:]))}
        return projector, facts
