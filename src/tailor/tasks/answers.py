"""Answers, not chatter: the answer inside a small chat model's generated text.

Small chat models wrap short answers in chatter: an announcing preamble ("Sure! Here is a
headline:"), a label ("Subject:"), quotes, markdown (``**bold**``, ``#`` headers, backticks
around the whole answer) and an explanation after it ("This headline captures ..."). The
metrics read the answer, so :func:`extract_answer` removes what is recognisably chatter by
its shape, never by a data set's words, and leaves everything else as it is: an answer that
merely contains a colon ("capture: fix a leak"), quotes or the word "here" is kept.

:func:`raw_answer` is the baseline it is measured against (``tailor eval --raw-answers``):
the first non-empty line, whitespace-stripped, nothing else removed.
"""

from __future__ import annotations

import re

# Nouns an announcement or a label names the answer by (any generation task's answer).
_NOUN = (r"(?:subject(?:\s+line)?|commit\s+(?:message|subject)|headline|title|tweet|reply|answer|response|output"
         r"|paraphrase|completion|caption|suggestion|version|option|attempt|rewrite|summary|message)")
# Nouns a bare label may be ("Subject:", "Revised headline:"); fewer, since "summary: ..." can be content.
_LABEL_NOUN = (r"(?:subject(?:\s+line)?|commit\s+(?:message|subject)|headline|title|tweet|reply|answer|response"
               r"|output|paraphrase|paraphrased\s+tweet|completion|caption)")
_ADJECTIVE = (r"(?:revised|new|suggested|possible|proposed|improved|final|generated|rewritten|short|shorter|concise"
              r"|better|alternative|good|suitable|catchy|appropriate|updated|clear|email|commit|paraphrased)")
# What an announcement says the answer is for: "... for the following commit message".
_TARGET = r"(?:commit|message|article|text|email|tweet|paper|abstract|post|turn|debate|question|changes?|input|above)"
_INTERJECTION = re.compile(r"^(?:sure(?:\s+thing)?|certainly|of\s+course|okay|ok|absolutely|alright|all\s+right|great"
                           r"|no\s+problem|happy\s+to\s+help)\b[!.,]+\s*", re.IGNORECASE)
# "Here's a revised subject for the commit message", "I'd suggest the title".
_ANNOUNCEMENT = re.compile(
    rf"^(?:here(?:'s|’s|\s+is|\s+are)|below\s+is|i(?:'d|\s+would)?\s+(?:suggest|propose|recommend|go\s+with)"
    rf"|how\s+about)\s+(?:[\w'’-]+\s+){{0,4}}?{_NOUN}s?\b", re.IGNORECASE)
_HERE_YOU_GO = re.compile(r"^here\s+(?:you\s+(?:go|are)|it\s+is)\b[\s!.,:]*$", re.IGNORECASE)
# A label before a colon: "Subject", "Revised headline", "The subject line for this commit is".
_LABEL = re.compile(
    rf"^(?:(?:a|an|the|my|your|one)\s+)?(?:{_ADJECTIVE}\s+){{0,2}}{_LABEL_NOUN}"
    rf"(?:\s+(?:for|of)\s+(?:the|this|that|your|my|a|an)\s+(?:[\w-]+\s+){{0,3}}?{_TARGET}s?)?"
    r"(?:\s+(?:is|would\s+be|could\s+be))?$", re.IGNORECASE)
# "This headline captures ...", "It highlights ...": a sentence about the answer, after it.
_EXPLANATION = re.compile(
    rf"(?:(?<=[.!?\"'”’)])\s+|\s+[-–—]\s+|\s+\(|\s*\n)"
    rf"(?:(?:this|that|the\s+above)(?:\s+(?:{_ADJECTIVE}))?\s+{_NOUN}\s+\w+"
    r"|(?:this|that|it|which)\s+(?:captures|summari[sz]es|highlights|reflects|conveys|emphasi[sz]es|accurately"
    r"|concisely|succinctly|effectively|clearly\s+(?:states|describes|conveys)))\b.*$",
    re.IGNORECASE | re.DOTALL)
_MARKDOWN_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•+]\s+|\d{1,2}[.)]\s+)")
_EMPHASIS = re.compile(r"\*\*(.+?)\*\*")
_OPENING_QUOTE = re.compile(r"[\"“«`]")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`", "„": "“"}


def raw_answer(text: str) -> str:
    """The first non-empty line of ``text``, stripped: what the model wrote, unchanged."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def extract_answer(text: str, *, single_line: bool = True) -> str:
    """The answer in ``text`` without preambles, labels, quotes, markdown and explanations.

    With ``single_line`` (tasks whose answer is one line: subjects, headlines, tweets) the
    first line that still holds an answer after that is kept, and what follows it is
    dropped as explanation; otherwise the answer's later lines are kept too.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        answer = _answer_in_line(line, last=index == len(lines) - 1)
        if answer is None:
            continue  # a preamble or a label on its own line: the answer follows
        if single_line or index == len(lines) - 1:
            return answer
        return "\n".join([answer, *(rest.rstrip() for rest in lines[index + 1:])]).strip()
    return ""


def _answer_in_line(line: str, *, last: bool) -> str | None:
    """The answer a line holds, or ``None`` when the line is only chatter."""
    text = _LIST_MARKER.sub("", _MARKDOWN_HEADER.sub("", line)).strip()
    text = _EMPHASIS.sub(r"\1", text).strip()
    interjection = _INTERJECTION.match(text)
    if interjection:
        rest = text[interjection.end():].strip()
        # "Sure! Here is ...", or "Sure!" alone before the answer's line; "Great, ..." may be the answer.
        if not rest and not last:
            return None
        if _is_chatter(rest):
            text = rest
    if _HERE_YOU_GO.match(text):
        return None
    head, colon, tail = text.partition(":")
    if colon and _is_chatter(head):
        text = tail.strip()
        if not text:
            return None
    else:
        announced = _ANNOUNCEMENT.match(text)
        if announced:
            # 'Here is a headline for it: "..."' without the colon: the quoted part is the answer.
            opening = _OPENING_QUOTE.search(text, announced.end())
            quoted = _leading_quote(text[opening.start():]) if opening else None
            if quoted is not None:
                return quoted
            return None if not last else ""
    quoted = _leading_quote(text)
    if quoted is not None:
        return quoted
    return _unwrap(_EXPLANATION.sub("", text).strip())


def _is_chatter(head: str) -> bool:
    """Whether the text before a colon announces or labels the answer rather than being it."""
    head = _unwrap(head.strip().strip("*_").strip())
    return bool(_LABEL.match(head) or _ANNOUNCEMENT.match(head))


def _leading_quote(text: str) -> str | None:
    """The quoted answer at the start of ``text`` when only punctuation or an explanation
    follows it (``"Fix the leak" - this subject ...``); ``None`` otherwise."""
    close = _QUOTES.get(text[:1])
    if close is None:
        return None
    end = text.find(close, 1)
    if end <= 1:
        return None
    after = text[end + 1:]
    if after.strip(" .!,;:-–—") and not _EXPLANATION.match(after):
        return None
    return text[1:end].strip()


def _unwrap(text: str) -> str:
    """``text`` without quotes, backticks or emphasis that wrap the whole of it."""
    while len(text) >= 2:
        first, last = text[0], text[-1]
        close = _QUOTES.get(first)
        if close is not None and last == close and close not in text[1:-1]:
            text = text[1:-1].strip()
        elif first == last == "*" and text.strip("*"):
            text = text.strip(first).strip()
        else:
            break
    return text


__all__ = ["extract_answer", "raw_answer"]
