"""Replies that wait at the same time go to the model as one batch, each gets its own answer,
a failure reaches every reply of its batch, and background work still waits for replies."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tailor.backends.contract import BackendError, approximate_token_count
from tailor.backends.gate import BackendGate
from tailor.types import GenerationRequest, GenerationResult


class HeldBackend:
    """Answers each request with its message; the first call waits until ``release`` is set.
    Records the size of every batch it is given, and fails batches holding "fail"."""

    name = "held"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []
        self._calls = 0

    def count_tokens(self, text: str) -> int:
        return approximate_token_count(text)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        texts = [r.messages[-1]["content"] for r in requests]
        self.batches.append(texts)
        self._calls += 1
        if self._calls == 1:
            self.entered.set()
            assert self.release.wait(10)
        if "fail" in texts:
            raise BackendError("the model failed on this batch")
        return [GenerationResult(f"answer to {text}", tokens=3) for text in texts]


def ask(text: str) -> GenerationRequest:
    return GenerationRequest(({"role": "user", "content": text},), max_new_tokens=8)


def wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.005)


def test_replies_waiting_together_go_as_one_batch_and_each_gets_its_own_answer() -> None:
    backend = HeldBackend()
    gate = BackendGate(backend, max_batch=3)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(gate.generate, ask("q0"))
        assert backend.entered.wait(5)
        rest = {text: pool.submit(gate.generate, ask(text)) for text in ("q1", "q2", "q3", "q4")}
        wait_for(lambda: gate.waiting == 4)
        backend.release.set()
        assert first.result(5).text == "answer to q0"
        assert {text: future.result(5).text for text, future in rest.items()} == {
            text: f"answer to {text}" for text in rest}
    # q0 alone, then the waiting replies in arrival order, at most 3 at a time.
    sizes = [len(batch) for batch in backend.batches]
    assert sizes[0] == 1 and sorted(sizes[1:]) == [1, 3] and sum(sizes) == 5
    assert [text for batch in backend.batches for text in batch] == ["q0", "q1", "q2", "q3", "q4"]


def test_a_failed_batch_fails_each_of_its_replies_and_the_gate_goes_on() -> None:
    backend = HeldBackend()
    gate = BackendGate(backend, max_batch=4)
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(gate.generate, ask("q0"))
        assert backend.entered.wait(5)
        doomed = [pool.submit(gate.generate, ask(text)) for text in ("fail", "q1")]
        wait_for(lambda: gate.waiting == 2)
        backend.release.set()
        assert first.result(5).text == "answer to q0"
        for future in doomed:
            with pytest.raises(BackendError, match="failed on this batch"):
                future.result(5)
    assert gate.generate(ask("after")).text == "answer to after"
    assert not gate.busy and gate.waiting == 0


def test_background_work_waits_while_replies_are_queued() -> None:
    backend = HeldBackend()
    gate = BackendGate(backend, max_batch=4)
    order: list[str] = []
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(lambda: order.append(gate.generate(ask("reply 0")).text))
        assert backend.entered.wait(5)
        background = pool.submit(lambda: order.append(gate.generate(ask("extraction"), background=True).text))
        time.sleep(0.05)  # the background call is waiting before the next reply arrives
        reply = pool.submit(lambda: order.append(gate.generate(ask("reply 1")).text))
        wait_for(lambda: gate.waiting == 1)
        backend.release.set()
        for future in (first, background, reply):
            future.result(5)
    assert sorted(order) == ["answer to extraction", "answer to reply 0", "answer to reply 1"]
    assert backend.batches == [["reply 0"], ["reply 1"], ["extraction"]]  # the order the model took them in


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        BackendGate(HeldBackend(), max_batch=0)
