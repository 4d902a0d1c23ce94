"""A scripted backend for tests: deterministic, instant, and still sensitive to the prompt."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from tailor.backends.contract import TextStream, apply_stop, approximate_token_count, cut_stream
from tailor.types import GenerationRequest, GenerationResult

_WORD = re.compile(r"\w+")


class EchoBackend:
    """Answers from a script, or by echoing the prompt.

    With ``script`` (a list of texts, used in turn, or a function of the request) it
    returns those texts. Without one it returns the last user message, cut to
    ``max_new_tokens`` words and at the stop strings, so that what a personalizer puts
    into the prompt shows in the output. Candidate scoring counts how often each
    candidate's words occur in the whole prompt: a label that retrieved items mention
    more often wins, which lets tests tell a personalized prompt from a bare one.
    :meth:`stream` gives the same reply word by word.
    """

    name = "echo"

    def __init__(self, script: Sequence[str] | Callable[[GenerationRequest], str] | None = None) -> None:
        self._script = script
        self._turn = 0
        self.requests: list[GenerationRequest] = []

    def count_tokens(self, text: str) -> int:
        return approximate_token_count(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for request in requests:
            self.requests.append(request)
            if request.candidates is not None:
                results.append(self._score(request))
                continue
            text = apply_stop(" ".join(self._words(request)), request.stop)
            results.append(GenerationResult(text=text, tokens=len(text.split())))
        return results

    def stream(self, request: GenerationRequest) -> TextStream:
        """The reply :meth:`generate` gives, one word (and the space after it) at a time."""
        if request.candidates is not None:
            raise ValueError("a request with candidates is scored, not streamed; use generate()")
        self.requests.append(request)
        words = self._words(request)
        pieces = [word + " " for word in words[:-1]] + words[-1:]
        text = yield from cut_stream(pieces, request.stop)
        return GenerationResult(text=text, tokens=len(text.split()))

    def _words(self, request: GenerationRequest) -> list[str]:
        return self._scripted(request).split(" ")[: request.max_new_tokens]

    def _scripted(self, request: GenerationRequest) -> str:
        if self._script is None:
            users = [m["content"] for m in request.messages if m["role"] == "user"]
            return users[-1] if users else ""
        if callable(self._script):
            return self._script(request)
        if not self._script:
            raise ValueError("EchoBackend script is empty")
        text = self._script[self._turn % len(self._script)]
        self._turn += 1
        return text

    def _score(self, request: GenerationRequest) -> GenerationResult:
        prompt = " ".join(m["content"] for m in request.messages).lower()
        counts: dict[str, int] = {}
        for word in _WORD.findall(prompt):
            counts[word] = counts.get(word, 0) + 1
        candidates = request.candidates or ()
        scores = {}
        for candidate in candidates:
            words = _WORD.findall(candidate.lower())
            scores[candidate] = float(sum(counts.get(w, 0) for w in words)) / max(len(words), 1)
        best = max(candidates, key=lambda c: (scores[c], -candidates.index(c)))
        return GenerationResult(text=best, scores=scores, tokens=0)
