"""Personalizing one chat request: the library's personalizer, plus the chat additions.

The prompt of a served request is built by the very personalizer ``tailor eval`` measures
for the serving method (:meth:`tailor.methods.MethodSpec.build` on
:data:`~tailor.tasks.chat.CHAT_TASK`, the user's latest message as the input), so a number
in docs/results.md describes what a served user gets. What differs from ``tailor eval`` is
where things come from, not what they are (the fields of
:class:`~tailor.methods.BuildContext`): records are ranked from the store's per-user
indexes (:class:`~tailor.retrieval.stored.StoredIndexes`, the same rankings), summaries are
the newest stored ones (a stale one is rewritten in the background), and ``refine``'s style
note is asked of the served model through the server's queue
(:meth:`ChatPersonalizer.context_steps`), like a reply.

On top of those messages the chat adds, and only these (:data:`CHAT_ADDITIONS`; a test
drives the same user through both paths and allows no other difference):

- ``client-system``: the client's own system messages take the place of the task's
  instruction in the leading system message;
- ``memories``: the ``k_memories`` best facts the user shared earlier, a block at the end
  of the system message;
- ``episodes``: the user's ``k_episodes`` most relevant earlier messages, dated, within
  ``episode_tokens`` (episodic memory, :mod:`tailor.memory.episodes`), a block after it;
- ``conversation``: the conversation's earlier turns, between the system message and the
  personalized turn(s); turns after the latest user message stay after it;
- ``as-is``: when nothing of the user was used (granularity ``global``, no memories, no
  episodes), the conversation is sent as the client sent it, without the task's
  instruction; so is a request for an unknown user or without ``user``.

The user's adapter, where the model has one, is named in the context so that the reply
reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tailor.memory.episodes import Episode
from tailor.memory.store import Memory, MemoryStore
from tailor.personalizers.contract import Personalized, Personalizer, personalize_steps
from tailor.prompting.builder import TokenCounter
from tailor.store.contract import ProfileStore
from tailor.tasks.chat import CHAT_TASK, ChatTask
from tailor.types import Granularity, ModelSteps, Profile

CHAT_ADDITIONS = ("client-system", "memories", "episodes", "conversation", "as-is")
EPISODES_HEADER = "Earlier in your conversations with this user (most relevant first):"


@dataclass(frozen=True)
class ChatContext:
    """What was found about the user for one request: the personalizer's decision, and the
    chat additions. ``adapter`` is the adapter the model runs with (``"user"``, ``"soup"``,
    ``"persona:ID"``, ``"global"``; ``None``: the base model)."""

    personalized: Personalized | None = None
    memories: tuple[Memory, ...] = ()
    episodes: tuple[Episode, ...] = ()
    adapter: str | None = None

    @property
    def retrieved(self) -> tuple[str, ...]:
        return self.personalized.retrieved if self.personalized is not None else ()

    @property
    def uses_the_user(self) -> bool:
        """Whether anything of the user goes into the prompt."""
        used = self.personalized is not None and self.personalized.granularity != "global"
        return used or bool(self.memories or self.episodes)

    @property
    def granularity(self) -> Granularity:
        """The narrowest level the reply is personalized at."""
        decided = self.personalized.granularity if self.personalized is not None else "global"
        if decided == "user" or self.memories or self.episodes or self.adapter in ("user", "soup"):
            return "user"
        if decided == "persona" or (self.adapter is not None and self.adapter.startswith("persona")):
            return "persona"
        return "global"


class ChatPersonalizer:
    """The library ``personalizer`` for a user's latest message, and the chat additions."""

    def __init__(self, store: ProfileStore, personalizer: Personalizer, memory: MemoryStore | None, *,
                 k_memories: int, count_tokens: TokenCounter,
                 adapter_label: Callable[[str | None], str | None] | None = None, task: ChatTask = CHAT_TASK,
                 k_episodes: int = 4, episode_tokens: int = 256) -> None:
        self.store, self.personalizer, self.memory, self.task = store, personalizer, memory, task
        self.k_memories, self.k_episodes, self.episode_tokens = k_memories, k_episodes, episode_tokens
        self.count_tokens, self.adapter_label = count_tokens, adapter_label

    def context(self, user_id: str, query: str) -> ChatContext | None:
        """The user's context for ``query``; ``None`` when the store does not hold the user.
        A personalizer that asks the model first (``refine``) asks its own backend here."""
        if not self.store.has_user(user_id):
            return None
        return self._with_additions(user_id, query, self.personalizer.personalize(self.task, query, Profile(user_id)))

    def context_steps(self, user_id: str, query: str) -> ModelSteps[ChatContext | None]:
        """:meth:`context` as steps (:data:`~tailor.types.ModelSteps`): the requests a
        personalizer makes before its prompt (``refine``'s style note) are yielded, for the
        server to queue like replies; none for the other methods."""
        if not self.store.has_user(user_id):
            return None
        decided = yield from personalize_steps(self.personalizer, self.task, query, Profile(user_id))
        return self._with_additions(user_id, query, decided)

    def _with_additions(self, user_id: str, query: str, decided: Personalized) -> ChatContext:
        memories = self.memory.search(user_id, query, self.k_memories) if self.memory is not None else []
        # The user's own words only: a small model's replies can be wrong, and showing them
        # again would make its mistakes self-reinforcing. Replies still help find messages.
        episodes = (self.memory.search_episodes(user_id, query, self.k_episodes, speaker="user")
                    if self.memory is not None else [])
        adapter = self.adapter_label(user_id) if self.adapter_label is not None else None
        return ChatContext(decided, tuple(memories), tuple(episodes), adapter)

    def messages(self, conversation: Sequence[dict[str, str]], context: ChatContext) -> tuple[dict[str, str], ...]:
        """The personalized messages with the chat additions (see the module docstring)."""
        decided = context.personalized
        if decided is None or not decided.messages or not context.uses_the_user:
            return tuple(conversation)
        personalized = list(decided.messages)
        # The personalizer's system message (a package's method may have none).
        system = personalized.pop(0)["content"] if personalized[0]["role"] == "system" else ""
        client = [m["content"] for m in conversation if m["role"] == "system" and m["content"].strip()]
        if client:
            joined = "\n\n".join(client)
            system = system.replace(self.task.instruction, joined, 1) if self.task.instruction in system else (
                "\n\n".join(part for part in (joined, system) if part))
        blocks = [system] if system else []
        if context.memories:
            blocks.append(self.task.memory_header + "\n" + "\n".join(f"- {m.text}" for m in context.memories))
        lines = self._episode_lines(context.episodes)
        if lines:
            blocks.append(EPISODES_HEADER + "\n" + "\n".join(lines))
        head = [{"role": "system", "content": "\n\n".join(blocks)}] if blocks else []
        turns = [m for m in conversation if m["role"] != "system"]
        last = max((i for i, m in enumerate(turns) if m["role"] == "user"), default=len(turns))
        return (*head, *turns[:last], *personalized, *turns[last + 1:])

    def _episode_lines(self, episodes: Sequence[Episode]) -> list[str]:
        """``On DATE the user said: ...`` lines, most relevant first, within ``episode_tokens``
        (a line that does not fit whole is cut to what is left, then no more are added)."""
        lines: list[str] = []
        left = self.episode_tokens
        for episode in episodes:
            who = "you replied" if episode.speaker == "assistant" else "the user said"
            line = f"- On {episode.date} {who}: {' '.join(episode.text.split())}" if episode.date else (
                f"- Earlier {who}: {' '.join(episode.text.split())}")
            cost = self.count_tokens(line)
            if cost > left:
                words = line.split(" ")
                while words and self.count_tokens(" ".join(words) + " ...") > left:
                    words = words[:max(0, len(words) - max(1, len(words) // 8))]
                if len(words) > 6:
                    lines.append(" ".join(words) + " ...")
                break
            lines.append(line)
            left -= cost
        return lines


__all__ = ["CHAT_ADDITIONS", "EPISODES_HEADER", "ChatContext", "ChatPersonalizer"]
