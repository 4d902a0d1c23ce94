"""A user's message cut into statements, and a kept statement turned into a fact, by code.

Fact extraction on a small model splits the work: code finds the candidate statements
(first-person clauses that are not questions, conditions, wishes or thoughts about the
world), a model judges each one (see :mod:`tailor.memory.extraction`), and code again
writes a kept statement as a fact. The common kinds get a key, so that a later statement
supersedes an earlier one (``I live in Lisbon`` -> ``user.city = Lisbon``, then
``Actually I moved to Porto`` -> ``user.city = Porto``); every other kept statement is
stored as the user said it (``I have two kids``).

The rules are general English, not fitted to any labelled set: sentence and clause
boundaries, the first person, and a few words that mark a question, a condition, a
passing moment or an opinion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tailor.memory.facts import MAX_VALUE_CHARS, Fact, Operator

# A new clause starts after a comma, a semicolon or a conjunction when a subject follows.
_SUBJECT = r"(?:i|i'm|i’m|i've|i’ve|i'd|i’d|i'll|i’ll|im|my|we|we're|we’re|our|he|she|they|it|you|please|can|could|would)\b"
_CLAUSE_BREAK = re.compile(
    rf"\s*(?:[,;:]\s*(?:(?:and|but|so|because|though|although|while|since)\s+)?|"
    rf"\s+(?:and|but|so|because|though|although|while|since)\s+)(?={_SUBJECT})", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
# Words in front of a statement that do not change it ("Actually I moved to Porto").
_LEAD = re.compile(r"^(?:(?:oh|ok|okay|well|so|and|but|also|actually|anyway|btw|by the way|just so you know|fyi|"
                   r"hi|hey|hello|yes|yeah|no|nope|sure|right|plus|oh and|now)\b[\s,!-]*)+", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"^(?:i\b|i['’](?:m|ve|d|ll)\b|im\b|my\b|we\b|we['’](?:re|ve)\b|our\b|call me\b)",
                           re.IGNORECASE)
# A clause with these is not a lasting statement about the writer: a condition, a wish,
# a guess, a plan, a thought about the world, a request, or a moment that passes.
_NOT_LASTING = re.compile(
    r"\b(?:if|unless|would|could|might|may|maybe|perhaps|wish|hope|imagine|suppose|supposing|should|"
    r"i['’]d|i['’]ll|will|gonna|going to|think|thinking|believe|guess|wonder|wondering|feel like|not sure|"
    r"need|looking for|want a|want an|want the|want to know|help me|tell me|"
    r"today|tonight|tomorrow|yesterday|right now|this morning|this afternoon|this evening|this week|"
    r"last night|just now|at the moment|later|"
    r"this|that|these|those)\b", re.IGNORECASE)
# What a listener says back ("I see", "I agree"): about the conversation, not the writer.
_ACKNOWLEDGEMENT = re.compile(r"^i\s+(?:see|agree|disagree|know|understand|get it|got it|mean|bet|suppose|"
                              r"guess|suppose so|think so|hope so)\b(?:[\s,]+(?:thanks?|thank you|now|ok|okay)\b)*\W*$",
                              re.IGNORECASE)
_QUOTED = re.compile(r"['\"“‘][^'\"”’]*['\"”’]")
_CODE = re.compile(r"[(){}\[\]=<>`]|\bdef\b|\bimport\b")


@dataclass(frozen=True)
class Clause:
    """One clause of a message: its ``text`` (lead words removed) and whether the sentence
    it belongs to is a question."""

    text: str
    question: bool


def split_clauses(message: str) -> list[Clause]:
    """The clauses of ``message``, in order: sentences, cut where a new subject starts."""
    clauses = []
    for match in _SENTENCE.finditer(message):
        sentence = match.group(0).strip()
        if not sentence:
            continue
        question = sentence.endswith("?")
        for piece in _CLAUSE_BREAK.split(sentence):
            text = _LEAD.sub("", piece.strip()).strip(" \t,;:.!?-")
            if text:
                clauses.append(Clause(text, question))
    return clauses


def is_candidate(clause: Clause) -> bool:
    """Whether ``clause`` may state a lasting fact about the writer: in the first person,
    not a question, and free of the words of a condition, a wish, a request, an opinion
    or a passing moment (and of quoted text or code, which the writer did not say of
    themselves)."""
    text = clause.text
    if clause.question or not _FIRST_PERSON.match(text) or len(text) > MAX_VALUE_CHARS:
        return False
    return not (_NOT_LASTING.search(text) or _ACKNOWLEDGEMENT.match(text) or _QUOTED.search(text)
                or _CODE.search(text))


def candidate_statements(message: str) -> list[str]:
    """The clauses of ``message`` that :func:`is_candidate` keeps, without repeats."""
    seen: set[str] = set()
    kept = []
    for clause in split_clauses(message):
        if is_candidate(clause) and clause.text.casefold() not in seen:
            seen.add(clause.text.casefold())
            kept.append(clause.text)
    return kept


# -- statement -> fact ------------------------------------------------------------------------

_I_AM = r"(?:i['’]m|im|i am|i['’]ve been|i have been|we['’]re|we are)"
_NAME = r"([A-Z][\w'’\-]*(?:\s+[A-Z][\w'’\-]*)?)"
_PLACE = r"([A-Z][\w'’\-]*(?:\s+[A-Z][\w'’\-]*){0,3})"
_DIETS = ("vegetarian", "vegan", "pescatarian", "pescetarian", "gluten-free", "gluten free", "keto", "halal",
          "kosher", "dairy-free", "dairy free", "paleo", "flexitarian")
# Common occupations: "I'm a nurse" is a job, "I'm a big fan" is not.
_JOBS = frozenset([
    "accountant", "actor", "actress", "architect", "artist", "baker", "barber", "barista", "biologist",
    "bookkeeper", "builder", "butcher", "carpenter", "cashier", "chef", "chemist", "cleaner", "clerk", "coach",
    "consultant", "cook", "courier", "dancer", "dentist", "designer", "developer", "doctor", "driver",
    "economist", "editor", "electrician", "engineer", "farmer", "firefighter", "gardener", "hairdresser",
    "historian", "journalist", "judge", "lawyer", "lecturer", "librarian", "manager", "mechanic", "midwife",
    "musician", "nurse", "painter", "paramedic", "pharmacist", "photographer", "physician", "physicist",
    "physiotherapist", "pilot", "plumber", "poet", "police", "policeman", "policewoman", "postman", "professor",
    "programmer", "psychologist", "receptionist", "researcher", "salesman", "saleswoman", "scientist",
    "secretary", "singer", "soldier", "student", "surgeon", "tailor", "teacher", "technician", "therapist",
    "translator", "tutor", "veterinarian", "vet", "waiter", "waitress", "writer"
])
# (lead words, value, key, operator): the lead words are matched in any case; a name or a
# place must be capitalized.
_RULES: tuple[tuple[str, str, str, Operator], ...] = (
    (r"my name is|my name['’]s|call me|i['’]m called|i am called", _NAME + r"(?=$|[,;.!])", "user.name", "="),
    (r"i['’]m|i am|im", _NAME + r"(?=$|[,;.!])", "user.name", "="),
    (r"(?:i|we)\s+(?:now\s+)?(?:live|moved|relocated|have moved|['’]ve moved)\s+(?:in|to)", _PLACE,
     "user.city", "="),
    (r"(?:i['’]m|i am|we['’]re|we are)\s+(?:now\s+)?(?:living|based)\s+in", _PLACE, "user.city", "="),
    (r"(?:i['’]m|i am|i come|im)\s+(?:originally\s+)?from", _PLACE, "user.hometown", "="),
    (r"i\s+(?:work|am working|['’]m working)\s+as(?:\s+an?)?", r"(?i:(.+?)(?:\s+(?:at|in|for|on)\s+.*)?)$",
     "user.job", "="),
    (r"i\s+work\s+(?:at|for)", r"(.+)$", "user.employer", "="),
    (rf"{_I_AM}(?:\s+a)?", rf"(?i:({'|'.join(re.escape(diet) for diet in _DIETS)}))\b", "user.diet", "="),
    (_I_AM, r"(\d{1,3})(?i:\s+years?\s+old)?$", "user.age", "="),
    (rf"{_I_AM}\s+allergic\s+to", r"(.+)$", "user.allergies", "+="),
    (r"i\s+(?:really\s+)?(?:love|like|enjoy|adore)", r"(.+)$", "user.likes", "+="),
    (rf"{_I_AM}\s+(?:a\s+(?:big|huge)\s+fan\s+of|really\s+into|into)", r"(.+)$", "user.likes", "+="),
    (r"i\s+(?:really\s+)?(?:hate|dislike|don['’]t like|do not like|can['’]t stand|cannot stand)", r"(.+)$",
     "user.dislikes", "+="),
    (r"i\s+speak", r"(.+)$", "user.languages", "+="),
)
_KEYED = tuple((re.compile(rf"^(?i:{lead})\s+{value}"), key, operator) for lead, value, key, operator in _RULES)
_JOB_CLAUSE = re.compile(rf"^{_I_AM}\s+an?\s+((?:[\w\-]+\s+){{0,3}}?([\w\-]+))(?:\s+(?:at|in|for|on|of|with)\s+.*)?$",
                         re.IGNORECASE)
# Words that read as a name after "I'm" but are not one.
_NOT_NAMES = frozenset([
    "fine", "good", "ok", "okay", "sure", "sorry", "back", "here", "home", "ready", "done", "new", "tired",
    "happy", "sad", "busy", "free", "late", "early", "afraid", "glad"
])


def statement_fact(statement: str, confidence: float) -> Fact:
    """The fact that a kept statement gives: keyed when it is of a known kind, else its text."""
    for pattern, key, operator in _KEYED:
        match = pattern.match(statement)
        if match is None:
            continue
        value = _value(match.group(1))
        if key == "user.name" and (value.casefold() in _NOT_NAMES or value.casefold().endswith(("ese", "ish", "ian"))):
            continue
        if value:
            return Fact(key=key, operator=operator, value=value, confidence=confidence)
    job = _JOB_CLAUSE.match(statement)
    if job is not None and job.group(2).casefold().rstrip("s") in _JOBS:
        return Fact(key="user.job", operator="=", value=_value(job.group(1)), confidence=confidence)
    return Fact(key=None, operator="", value=statement[:1].upper() + statement[1:], confidence=confidence)


def _value(text: str) -> str:
    """A value without what trails it: ``Porto last month`` -> ``Porto``, ``jazz, especially`` -> ``jazz``."""
    text = re.split(r",|;|\s+(?:especially|because|since|last|next|now|anymore|originally|two|\d+\s+years?)\b",
                    text, maxsplit=1)[0]
    return text.strip(" .!'\"")


__all__ = ["Clause", "candidate_statements", "is_candidate", "split_clauses", "statement_fact"]
