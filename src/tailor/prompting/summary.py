"""Profile-augmented prompting: an LLM-written summary of a user's profile (PAG-style).

A summary is written once per user and kept in the profile store as an artifact, with the
model and prompt that produced it and the profile version it was computed from. When the
user's records change the stored summary is stale and is written again on next use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tailor.prompting.builder import TokenCounter, fit_record
from tailor.retrieval.simple import recency_order
from tailor.store.contract import ProfileStore
from tailor.tasks.spec import TaskSpec
from tailor.types import Backend, GenerationRequest, HistoryRecord, Profile

SUMMARY_KIND = "summary"

SUMMARY_INSTRUCTION = (
    "Describe, in at most two short sentences, the style and preferences these items show "
    "(length, wording, tone, recurring topics). Do not repeat the items."
)


def latest_records(profile: Profile, n: int) -> list[HistoryRecord]:
    """The ``n`` most recent records (by date, then by position), oldest first."""
    # The one recency rule (retrieval.simple.recency_order), most recent first, turned around.
    return [profile.records[i] for i in reversed(recency_order(profile.records)[:max(n, 0)])]


def describe_items_messages(task: TaskSpec, records: Sequence[HistoryRecord], instruction: str, *,
                            count_tokens: TokenCounter, item_tokens: int = 48) -> tuple[dict[str, str], ...]:
    """A prompt that shows ``records`` (each cut to ``item_tokens``) and asks ``instruction``."""
    lines = "\n".join(f"- {task.render_item(fit_record(task, r, item_tokens, count_tokens))}" for r in records)
    return (
        {"role": "system", "content": "You are a careful analyst of writing style."},
        {"role": "user", "content": f"{task.context_header}\n{lines}\n\n{instruction}"},
    )


def clean_description(text: str) -> str:
    """The first paragraph of a generated description, on one line."""
    paragraph = text.strip().split("\n\n")[0]
    return " ".join(paragraph.split())


@dataclass(frozen=True)
class WrittenSummary:
    """A summary as it is stored: the user's, under the summarizer's ``key``, with the
    profile version it was written from (it is current while the profile stays at it)."""

    user_id: str
    key: str
    value: dict[str, Any]
    """``{"summary", "model", "prompt", "prompt_hash", "task"}``."""
    profile_version: int

    @property
    def text(self) -> str:
        return str(self.value["summary"])

    def store_in(self, store: ProfileStore) -> None:
        store.put_artifact(self.user_id, SUMMARY_KIND, self.key, self.value, self.profile_version)


class ProfileSummarizer:
    """Writes and caches one summary per user for a task, with one backend.

    :meth:`summaries` reads, writes and stores; its pieces serve a caller that reads and
    stores elsewhere than the model runs: :meth:`request` (what the model is asked for a
    profile) and :meth:`write` (the summary of one profile, not stored)."""

    def __init__(self, backend: Backend, task: TaskSpec, store: ProfileStore, *, items: int = 8,
                 item_tokens: int = 48, max_new_tokens: int = 64, batch_size: int = 8) -> None:
        self.backend, self.task, self.store = backend, task, store
        self.items, self.item_tokens, self.max_new_tokens = items, item_tokens, max_new_tokens
        self.batch_size = batch_size
        model = getattr(backend, "model_id", getattr(backend, "name", "?"))
        recipe = f"{SUMMARY_INSTRUCTION}|{items}|{item_tokens}|{max_new_tokens}"
        self.prompt_hash = hashlib.sha256(recipe.encode()).hexdigest()[:12]
        self.model = str(model)
        self.key = f"{task.name}|{self.model}|{self.prompt_hash}"

    def cached(self, user_id: str) -> str | None:
        """The stored summary if it is current for the user's profile, else ``None``."""
        artifact = self.store.get_artifact(user_id, SUMMARY_KIND, self.key)
        if artifact is None or artifact.profile_version != self.store.profile_version(user_id):
            return None
        return str(artifact.value.get("summary", ""))

    def summary(self, user_id: str) -> str:
        """The user's summary, written now if missing or stale."""
        return self.summaries([user_id])[user_id]

    def summaries(self, user_ids: Sequence[str], progress: object | None = None) -> dict[str, str]:
        """Summaries for ``user_ids``: cached ones read back, missing or stale ones written
        in batches and stored. Users without records get an empty summary."""
        result: dict[str, str] = {}
        todo: list[tuple[str, Profile, int]] = []
        for user_id in dict.fromkeys(user_ids):
            cached = self.cached(user_id)
            if cached is not None:
                result[user_id] = cached
                continue
            version = self.store.profile_version(user_id)
            profile = self.store.get_profile(user_id)
            if not profile.records:
                result[user_id] = ""
                continue
            todo.append((user_id, profile, version))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            requests = [self.request(profile) for _, profile, _ in batch]
            for (user_id, _, version), generated in zip(batch, self.backend.generate(requests)):
                written = self._written(user_id, generated.text, version)
                written.store_in(self.store)
                result[user_id] = written.text
            update = getattr(progress, "update", None)
            if update is not None:
                update(len(batch))
        return result

    def request(self, profile: Profile) -> GenerationRequest:
        """What the model is asked for ``profile``'s summary: its latest items and the instruction."""
        return GenerationRequest(
            messages=describe_items_messages(self.task, latest_records(profile, self.items), SUMMARY_INSTRUCTION,
                                             count_tokens=self.backend.count_tokens, item_tokens=self.item_tokens),
            max_new_tokens=self.max_new_tokens, stop=("\n\n",))

    def write(self, profile: Profile, profile_version: int) -> WrittenSummary:
        """The summary of ``profile`` (read at ``profile_version``), written by the model now
        and not stored: :meth:`WrittenSummary.store_in` keeps it."""
        [generated] = self.backend.generate([self.request(profile)])
        return self._written(profile.user_id, generated.text, profile_version)

    def _written(self, user_id: str, text: str, profile_version: int) -> WrittenSummary:
        return WrittenSummary(user_id, self.key, {"summary": clean_description(text), "model": self.model,
                                                  "prompt": SUMMARY_INSTRUCTION, "prompt_hash": self.prompt_hash,
                                                  "task": self.task.name}, profile_version)
