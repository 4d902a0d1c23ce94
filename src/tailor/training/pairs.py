"""RAG-aware training pairs: pairs whose prompt is the one a personalization method builds.

Every training prompt is built by the very personalizer object ``tailor eval`` builds for
the adapter's :class:`~tailor.adapters.prompts.TrainingPrompt` (same retriever, layout, k
and budgets, no truncation of its own).

No leakage, for one user:

- each profile item is a pair: its input (the task's ``item_turn``) with the prompt built
  from the user's items dated *strictly earlier* than it (profiles whose dates are missing
  or unreadable: the items before it in the profile's order), its output as the target;
- each question of the *train* split is a pair: its input with the prompt built from its
  profile as given (a LaMP profile holds what preceded the question), its gold as target.
  A profile item that is itself one of these questions is left to the question's pair.

Golds are read only for the train split: training on dev or test questions would train on
what the evaluation then asks. For another split, only the items that precede every one of
the user's questions are used (see :func:`~tailor.adapters.prompts.items_before_questions`).
"""

from __future__ import annotations

from collections.abc import Sequence

from tailor.adapters.data import TrainingPair, item_pair
from tailor.adapters.prompts import TrainingPrompt, by_time
from tailor.methods import MethodSpec, parse_method
from tailor.personalizers.contract import Personalizer
from tailor.prompting.builder import PromptBudget
from tailor.tasks.spec import TaskSpec
from tailor.types import HistoryRecord, Profile, TaskExample

__all__ = ["method_pairs", "training_prompt"]


def training_prompt(method: str | MethodSpec, task: TaskSpec, *, k: int | None = None,
                    budget: PromptBudget = PromptBudget()) -> TrainingPrompt:
    """The prompt of a method as ``tailor eval --method`` takes it (``bm25``, ``bm25:dialogue``):
    ``none`` or one retrieval method alone (served as ``lora`` and ``lora+METHOD``), with
    ``k`` items (the task's default when ``None``, as in ``tailor eval``)."""
    spec = parse_method(method) if isinstance(method, str) else method
    if spec.parts != (spec.retrieval,):
        raise ValueError(f"adapters are trained for the prompt of none or of one retrieval method (served as lora "
                         f"and lora+bm25), not {spec.name!r}")
    retrieved = spec.retrieval.retriever is not None
    return TrainingPrompt(spec.name, (spec.layout or task.layout) if retrieved else None, task.items_per_input(k),
                          budget.input_tokens, budget.context_tokens)


def _pair(task: TaskSpec, personalizer: Personalizer, record_id: str, text: str, output: str,
          profile: Profile) -> TrainingPair:
    decided = personalizer.personalize(task, text, profile)
    return TrainingPair(record_id, text, output, messages=tuple(dict(m) for m in decided.messages),
                        context=tuple(decided.retrieved))


def method_pairs(task: TaskSpec, personalizer: Personalizer, user_id: str, records: Sequence[HistoryRecord],
                 questions: Sequence[TaskExample] = ()) -> list[TrainingPair]:
    """One user's training pairs with ``personalizer``'s prompts (see the module docstring).

    ``records`` is the user's history; ``questions`` are train-split questions with golds
    (their pairs come last, in the given order). Each pair's ``context`` lists the record
    ids its prompt shows.
    """
    if not task.document_fields:
        raise ValueError(f"task {task.name} has no document fields to learn from; adapters do not support it")
    listed = list(records)
    ordered, instants = by_time(listed)
    moments = {r.id: moment for r, moment in zip(ordered, instants)} if instants is not None else None
    question_ids = {q.id for q in questions}
    pairs = []
    for index, record in enumerate(ordered):
        if record.id in question_ids:
            continue
        item = item_pair(task, record)
        if item is None:
            continue
        if moments is None:
            earlier = ordered[:index]
        else:
            # In the profile's own order, as the store hands it to the personalizer at inference.
            earlier = [r for r in listed if moments[r.id] < moments[record.id]]
        pairs.append(_pair(task, personalizer, record.id, item.input, item.output, Profile(user_id, tuple(earlier))))
    for question in questions:
        if question.user_id != user_id:
            raise ValueError(f"question {question.id} is user {question.user_id!r}'s, not {user_id!r}'s")
        gold = (question.gold or "").strip()
        if gold:
            pairs.append(_pair(task, personalizer, question.id, question.input, gold, question.profile))
    return pairs
