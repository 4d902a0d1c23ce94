"""Preference pairs: sampled replies ranked by each user's reward; no pair prefers a text to
itself; a seed reproduces the samples; the JSONL and PRISM readers read their layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("textstat")

from tailor.alignment.pairs import (
    PreferencePair,
    Prompt,
    Samples,
    first_sentence,
    pole_pairs,
    rank_pairs,
    read_pairs,
    sample_replies,
    write_pairs,
)
from tailor.alignment.prism import read_prism, read_prism_profiles
from tailor.alignment.users import SimulatedUser
from tailor.backends.echo import EchoBackend
from tailor.types import GenerationRequest

PRISM = Path(__file__).resolve().parents[1] / "fixtures" / "prism"
PROMPT = Prompt("p0", ({"role": "user", "content": "Tell me about rain."},))
CONCISE = SimulatedUser("short", {"informativeness": "concise"}, {"informativeness": 1.0}, quality_weight=0.0)
DETAILED = SimulatedUser("long", {"informativeness": "detailed"}, {"informativeness": 1.0}, quality_weight=0.0)


def test_each_user_gets_their_best_reply_over_their_worst() -> None:
    samples = [Samples(PROMPT, ("Rain.", "Rain falls from clouds when drops grow heavy enough to fall down.",
                                "Rain is water."))]
    pairs = rank_pairs(samples, [CONCISE, DETAILED])
    by_user = {pair.user: pair for pair in pairs}
    assert by_user["short"].chosen == "Rain." and by_user["short"].rejected.startswith("Rain falls")
    assert by_user["long"].chosen.startswith("Rain falls") and by_user["long"].rejected == "Rain."
    assert all(pair.chosen != pair.rejected and pair.margin and pair.margin > 0 for pair in pairs)


def test_no_pair_when_the_replies_are_one_text_or_rewarded_alike() -> None:
    assert rank_pairs([Samples(PROMPT, ("Same.", "Same.", " "))], [CONCISE]) == []
    assert rank_pairs([Samples(PROMPT, ("One two.", "Three four."))], [CONCISE], min_gap=0.05) == []
    with pytest.raises(ValueError, match="same text"):
        PreferencePair("u", PROMPT.messages, "Same.", "Same. ")


def test_more_pairs_per_prompt_pair_the_next_best_with_the_next_worst() -> None:
    replies = tuple(" ".join(["rain"] * words) + "." for words in (3, 12, 25, 50))
    pairs = rank_pairs([Samples(PROMPT, replies)], [CONCISE], per_prompt=3)
    # Four replies make two disjoint pairs at most: best over worst, second best over second worst.
    assert [(p.chosen, p.rejected) for p in pairs] == [(replies[0], replies[3]), (replies[1], replies[2])]
    assert pairs[0].margin > pairs[1].margin > 0
    assert len(pole_pairs([Samples(PROMPT, replies)], per_prompt=2)) > len(pole_pairs([Samples(PROMPT, replies)]))
    with pytest.raises(ValueError, match="at least 1"):
        rank_pairs([Samples(PROMPT, replies)], [CONCISE], per_prompt=0)


def test_pole_pairs_name_their_pole() -> None:
    pairs = pole_pairs([Samples(PROMPT, ("Rain.", "Rain falls from the clouds above us when the drops grow heavy."))])
    users = {pair.user for pair in pairs}
    assert {"pole:informativeness=concise", "pole:informativeness=detailed"} <= users
    concise = next(p for p in pairs if p.user == "pole:informativeness=concise")
    assert concise.chosen == "Rain."


def seeded(request: GenerationRequest) -> str:
    """A model whose reply depends on the sampling seed and the system hint."""
    hint = request.messages[0]["content"] if request.messages[0]["role"] == "system" else ""
    return f"reply {request.seed % 1000} {hint[:12]}".strip()


def test_a_seed_reproduces_the_samples_and_hints_vary_them() -> None:
    first = sample_replies(EchoBackend(seeded), [PROMPT], n=3, seed=7, hints=("", "Answer briefly.", "Answer long."))
    again = sample_replies(EchoBackend(seeded), [PROMPT], n=3, seed=7, hints=("", "Answer briefly.", "Answer long."))
    other = sample_replies(EchoBackend(seeded), [PROMPT], n=3, seed=8, hints=("", "Answer briefly.", "Answer long."))
    assert first == again != other
    assert len(set(first[0].replies)) == 3
    backend = EchoBackend(seeded)
    sample_replies(backend, [PROMPT], n=2, temperature=0.7, seed=1)
    assert all(r.temperature == 0.7 and r.seed is not None for r in backend.requests)
    with pytest.raises(ValueError, match="at least 2"):
        sample_replies(backend, [PROMPT], n=1)


def test_first_sentence_cuts_at_a_sentence_end_not_at_an_abbreviation() -> None:
    assert first_sentence("The U.S. team won the final. Fans cheered all night.") == "The U.S. team won the final."
    assert first_sentence('"It is over," he said. Then he left!') == '"It is over," he said.'
    assert first_sentence("Wow! The markets rose again today. Good.") == "Wow! The markets rose again today."
    assert first_sentence("Only one sentence here.") is None
    assert first_sentence("No end mark at all, cut off in the") is None


def test_shortened_replies_add_each_first_sentence_as_a_candidate() -> None:
    def two_sentences(request: GenerationRequest) -> str:
        return f"Rain falls when drops grow heavy {request.seed % 97}. It then runs into rivers and seas."

    def one_sentence(request: GenerationRequest) -> str:
        return f"Rain falls when drops grow heavy {request.seed % 97}."

    plain = sample_replies(EchoBackend(two_sentences), [PROMPT], n=2, seed=3)
    shortened = sample_replies(EchoBackend(two_sentences), [PROMPT], n=2, seed=3, shortened=True)
    assert shortened[0].replies[:2] == plain[0].replies
    assert [r.split(".")[0] + "." for r in plain[0].replies] == list(shortened[0].replies[2:])
    # The short candidate is what a concise user prefers to the full reply.
    pair = rank_pairs(shortened, [CONCISE])[0]
    assert pair.chosen in shortened[0].replies[2:] and pair.rejected in shortened[0].replies[:2]
    # A reply of one sentence adds nothing.
    assert len(sample_replies(EchoBackend(one_sentence), [PROMPT], n=2, seed=3, shortened=True)[0].replies) == 2


def test_the_jsonl_layout_round_trips_and_names_a_bad_line(tmp_path: Path) -> None:
    pairs = [PreferencePair("ana", PROMPT.messages, "Short.", "Long and winding.", "p0", 0.5, "simulated")]
    path = tmp_path / "pairs.jsonl"
    assert write_pairs(pairs, path) == 1
    assert read_pairs(path) == pairs
    path.write_text(path.read_text() + json.dumps({"user": "bob", "messages": [], "chosen": "a", "rejected": "b"})
                    + "\n" + json.dumps({"user": "bob"}) + "\n")
    with pytest.raises(ValueError, match=r"pairs.jsonl:2: .*at least one message"):
        read_pairs(path)
    path.write_text(json.dumps({"user": "bob"}) + "\n")
    with pytest.raises(ValueError, match=r":1: missing messages, chosen, rejected"):
        read_pairs(path)


def test_prism_turns_become_pairs_after_the_conversation_so_far() -> None:
    pairs = read_prism(PRISM)
    assert [(p.user, p.chosen, p.rejected) for p in pairs] == [
        ("user0", "Try a quick vegetable stir-fry.", "I cannot help with that."),
        ("user0", "Use tofu instead of chicken and skip the fish sauce.", "Vegan food is food without animal products.")]
    # the second turn's prompt holds the first turn and the reply the participant chose
    assert [m["content"] for m in pairs[1].messages] == [
        "What should I cook tonight?", "Try a quick vegetable stir-fry.", "Make it vegan."]
    assert pairs[0].margin == 77.0 and pairs[0].source == "prism"


def test_prism_survey_answers_become_text_attributes() -> None:
    profiles = read_prism_profiles(PRISM)
    assert profiles["user0"]["stated_pref_fluency"] == "95"
    assert profiles["user0"]["system_string"] == "Be brief and practical."
    assert set(profiles) == {"user0", "user1"}
