"""``preference``: replies to open instructions, scored by each simulated user's own reward.

The data is what ``tailor simulate users`` and ``tailor simulate pairs`` write in one folder::

    users.json              the simulated users (tailor.alignment.users)
    {split}_prompts.jsonl   {"id", "messages"}: the instructions of the split (train, dev)
    {split}_pairs.jsonl     {"user", "messages", "chosen", "rejected"}: the split's pairs

An example is one user and one prompt (``USER/PROMPT_ID``): the input is the prompt's last
user message, the profile holds the user's poles as attributes, and the gold is the user
(their poles and weights, as JSON), so that the ``reward`` metric scores each reply with
the reward of the user it was written for. ``tailor eval --task preference --method
none,preference`` then compares methods by the mean reward with paired intervals, and
``tailor eval-preference`` adds win rates against the base model's replies. A reply is
kept whole (lists span lines): nothing is extracted from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tailor.alignment.pairs import ASSISTANT_SYSTEM, read_prompts
from tailor.alignment.users import REWARD, read_users, user_of
from tailor.tasks.spec import TaskSpec
from tailor.types import Profile, TaskExample

__all__ = ["PREFERENCE", "REWARD", "PreferenceTask", "user_of"]




@dataclass(frozen=True)
class PreferenceTask(TaskSpec):
    """Replies to instructions, judged by simulated users (see the module docstring)."""

    def load(self, folder: str | Path, split: str = "dev", *, limit: int | None = None) -> list[TaskExample]:
        base = Path(folder)
        prompts_file = base / f"{split}_prompts.jsonl"
        if not prompts_file.is_file():
            raise FileNotFoundError(f"{base} holds no {split}_prompts.jsonl (tailor simulate pairs writes it)")
        users = read_users(base)
        prompts = read_prompts(prompts_file)
        examples = []
        for user in users:
            gold = json.dumps(user.to_dict(), sort_keys=True)
            for prompt in prompts:
                examples.append(TaskExample(f"{user.user_id}/{prompt.id}", user.user_id, prompt.text,
                                            Profile(user.user_id, (), user.attributes()), gold))
        return examples[:limit] if limit is not None else examples

    def parse(self, text: str) -> str:
        return text.strip()


PREFERENCE = PreferenceTask(
    name="preference", kind="generation", instruction=ASSISTANT_SYSTEM, query_marker="", document_fields=(),
    max_new_tokens=64, stop=(), metrics=("reward",), users_are="simulated users", k=1)
