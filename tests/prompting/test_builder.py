"""Prompt building: truncation to budgets, and the ``lamp`` and ``dialogue`` layouts.

Tokens are counted as whitespace-separated words so that every expected cut is exact.
"""

from __future__ import annotations

import pytest

from tailor.prompting import LAYOUTS, PromptBudget, build_messages, truncate
from tailor.tasks import get_task
from tailor.types import HistoryRecord


def words(text: str) -> int:
    return len(text.split())


def numbered(n: int, prefix: str = "w") -> str:
    return " ".join(f"{prefix}{i}" for i in range(n))


def article(id: str, title: str, text: str) -> HistoryRecord:
    return HistoryRecord(id=id, fields={"title": title, "text": text})


LAMP4 = get_task("LaMP-4")
INPUT = "Generate a headline for the following article: Volunteers planted trees along the river."


# -- truncate ------------------------------------------------------------------------------------


def test_truncate_keeps_text_that_fits_unchanged() -> None:
    assert truncate("  one two\nthree ", 3, words) == "  one two\nthree "
    assert truncate("", 5, words) == ""


@pytest.mark.parametrize("budget", [0, 1, 2, 5, 9])
def test_truncate_keeps_the_longest_word_prefix_within_budget(budget: int) -> None:
    assert truncate(numbered(10), budget, words) == numbered(budget)


def test_truncate_respects_a_counter_that_is_not_one_per_word() -> None:
    def characters(text: str) -> int:
        return len(text)

    # "aaa bb" is 6 characters; adding " c" would make 8.
    assert truncate("aaa bb c dddd", 7, characters) == "aaa bb"


# -- no items ------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_without_items_the_messages_are_the_instruction_and_the_input(layout: str) -> None:
    messages = build_messages(LAMP4, INPUT, (), layout=layout, count_tokens=words)  # type: ignore[arg-type]
    assert messages == ({"role": "system", "content": LAMP4.instruction}, {"role": "user", "content": INPUT})


def test_the_input_is_cut_to_its_budget() -> None:
    text = numbered(30, "x")
    budget = PromptBudget(input_tokens=10, context_tokens=100)
    _, bare = build_messages(LAMP4, text, (), count_tokens=words, budget=budget)
    assert bare["content"] == numbered(10, "x")
    _, personalized = build_messages(LAMP4, text, [article("a", "Short title", "short body")], count_tokens=words,
                                     budget=budget)
    assert personalized["content"].endswith("\n\n" + numbered(10, "x"))
    assert "x10" not in personalized["content"]


# -- lamp layout ---------------------------------------------------------------------------------


def test_lamp_layout_lists_items_under_the_header_in_rank_order() -> None:
    best = article("a", "Trees line the river", "Volunteers planted trees.")
    second = article("b", "Council passes budget", "The council voted.")
    system, user = build_messages(LAMP4, INPUT, [best, second], layout="lamp", count_tokens=words)
    assert system == {"role": "system", "content": LAMP4.instruction}
    assert user["role"] == "user"
    assert user["content"] == (
        f"{LAMP4.context_header}\n- {LAMP4.render_item(best)}\n- {LAMP4.render_item(second)}\n\n{INPUT}"
    )
    assert user["content"].index("Trees line the river") < user["content"].index("Council passes budget")


def test_each_item_is_cut_to_its_share_of_the_context_budget() -> None:
    long_a = article("a", "Alpha title", numbered(60, "a"))
    long_b = article("b", "Beta title", numbered(60, "b"))
    short = article("c", "Gamma title", "tiny body")
    budget = PromptBudget(input_tokens=50, context_tokens=60)  # 20 tokens per item
    _, user = build_messages(LAMP4, INPUT, [long_a, long_b, short], count_tokens=words, budget=budget)
    lines = user["content"].split("\n\n")[0].split("\n")
    assert lines[0] == LAMP4.context_header
    items = [line.removeprefix("- ") for line in lines[1:]]
    assert len(items) == 3
    for line in items:
        assert words(line) <= 20
    # The long items are cut from the end of their body, keeping the title and most of the share.
    assert items[0].startswith('"Alpha title" is the title for "a0 a1')
    assert words(items[0]) >= 18
    assert "a59" not in items[0]
    assert items[2] == LAMP4.render_item(short)
    assert user["content"].endswith(INPUT)


def test_a_single_item_may_use_the_whole_context_budget() -> None:
    item = article("a", "Alpha title", numbered(60, "a"))
    _, user = build_messages(LAMP4, INPUT, [item], count_tokens=words,
                             budget=PromptBudget(input_tokens=50, context_tokens=40))
    rendered = user["content"].split("\n")[1].removeprefix("- ")
    assert 38 <= words(rendered) <= 40


def test_extra_context_comes_first_in_the_lamp_layout() -> None:
    item = article("a", "Trees line the river", "Volunteers planted trees.")
    _, user = build_messages(LAMP4, INPUT, [item], count_tokens=words, extra_context="The user writes short titles.")
    assert user["content"].startswith("The user writes short titles.\n\n" + LAMP4.context_header)
    _, bare = build_messages(LAMP4, INPUT, (), count_tokens=words, extra_context="The user writes short titles.")
    assert bare["content"] == f"The user writes short titles.\n\n{INPUT}"


# -- dialogue layout -----------------------------------------------------------------------------


def test_dialogue_layout_replays_items_as_turns_with_the_best_item_last() -> None:
    best = article("a", "Trees line the river", "Volunteers planted trees.")
    second = article("b", "Council passes budget", "The council voted.")
    messages = build_messages(LAMP4, INPUT, [best, second], layout="dialogue", count_tokens=words)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == LAMP4.instruction
    assert messages[1]["content"] == "Generate a headline for the following article: The council voted."
    assert messages[2]["content"] == "Council passes budget"
    assert messages[3]["content"] == "Generate a headline for the following article: Volunteers planted trees."
    assert messages[4]["content"] == "Trees line the river"
    assert messages[5]["content"] == INPUT


def test_dialogue_turns_are_cut_to_the_item_share() -> None:
    item = article("a", "Alpha title", numbered(60, "a"))
    messages = build_messages(LAMP4, INPUT, [item], layout="dialogue", count_tokens=words,
                              budget=PromptBudget(input_tokens=50, context_tokens=20))
    assert messages[2]["content"] == "Alpha title"
    assert "a59" not in messages[1]["content"]
    assert "a0 a1" in messages[1]["content"]


def test_dialogue_puts_extra_context_in_the_system_message() -> None:
    item = article("a", "Trees line the river", "Volunteers planted trees.")
    messages = build_messages(LAMP4, INPUT, [item], layout="dialogue", count_tokens=words,
                              extra_context="The user writes short titles.")
    assert messages[0] == {"role": "system", "content": f"The user writes short titles.\n\n{LAMP4.instruction}"}
    assert all("short titles" not in m["content"] for m in messages[1:])


@pytest.mark.parametrize(("name", "item"), [
    ("LaMP-7", HistoryRecord(id="t", fields={"text": "cant wait for the weekend"})),
    ("LaMP-1", HistoryRecord(id="p", fields={"title": "Okapi at TREC-3", "abstract": "We test BM25."})),
])
def test_dialogue_falls_back_to_lamp_when_items_have_no_turn(name: str, item: HistoryRecord) -> None:
    task = get_task(name)
    dialogue = build_messages(task, "the input", [item], layout="dialogue", count_tokens=words)
    lamp = build_messages(task, "the input", [item], layout="lamp", count_tokens=words)
    assert dialogue == lamp
    assert len(dialogue) == 2
    assert dialogue[1]["content"] == f"{task.context_header}\n- {task.render_item(item)}\n\nthe input"


def test_unknown_layout_is_rejected() -> None:
    with pytest.raises(ValueError, match="lamp, dialogue"):
        build_messages(LAMP4, INPUT, (), layout="chat", count_tokens=words)  # type: ignore[arg-type]


def test_budgets_below_eight_tokens_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least 8"):
        PromptBudget(input_tokens=4)
    with pytest.raises(ValueError, match="at least 8"):
        PromptBudget(context_tokens=0)
