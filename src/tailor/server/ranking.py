"""``POST /v1/users/{user_id}/rank``: candidate items ordered for one user, with scores, by
the server's ranking method (``tailor serve --rank-method``: a classic recommender such as
``als``, a model method such as ``bm25``, or a reranker such as ``als+bm25``) on its ranking
task (``--rank-task``, default ``movielens-next``), from the user's stored history.

The ranker is the object ``tailor eval`` measures (:meth:`MethodSpec.build` on the same
task), so the same user, method and candidates get the same order. A recommender is
fitted on the histories of the caller's tenant (never another tenant's users) at the
tenant's first rank request; users added later are scored from their history as it is
then (see :mod:`tailor.recommenders.models`). What the ranker asks the model is queued
like a chat reply and awaited on the event loop; the rest runs in worker threads.

Body: ``{"items": [{"id", "text"[, "title"]}], "top": N}`` (``title``: what the model is
asked the likelihood of, ``text`` when absent; an id given twice is ranked once; ``top``:
how many to return, all by default). Answer: ``{"user_id", "method", "task", "items": [{"id", "score", "rank"}]}``,
best first.
"""

import math
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, BeforeValidator, Field, Strict, StringConstraints
from starlette.concurrency import run_in_threadpool

from tailor.methods import BuildContext, MethodSpec
from tailor.server.keys import Principal
from tailor.server.schema import NOT_BLANK, UserId
from tailor.server.service import TailorService
from tailor.server.validation import not_found
from tailor.store.contract import ProfileStore, UnknownUserError
from tailor.store.tenants import tenant_of
from tailor.tasks import get_task
from tailor.types import GenerationRequest, GenerationResult, HistoryRecord, Profile, advance_steps

MAX_ITEMS = 2000
"""The most candidates one request may rank (MovieLens 100k's whole catalogue fits)."""

ItemText = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=NOT_BLANK)]


def _json_integer(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


class RankItem(BaseModel):
    """A candidate: its id, its text (what retrieval and prompts read) and optionally its title."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NOT_BLANK)]
    text: ItemText
    title: ItemText | None = None


class RankBody(BaseModel):
    """The candidates to order (an id given twice is ranked once, as first given), and how
    many of them to return."""

    items: Annotated[list[RankItem], Field(min_length=1, max_length=MAX_ITEMS)]
    top: Annotated[int, Strict(), Field(ge=1, le=MAX_ITEMS), BeforeValidator(_json_integer)] | None = None



class TenantUsers:
    """The profiles of one tenant's users in a store: what a recommender serving that tenant
    is fitted on (a cross-user read within the tenant only)."""

    def __init__(self, store: ProfileStore, tenant: str | None) -> None:
        self.store, self.tenant = store, tenant

    def list_users(self) -> list[str]:
        return [user for user in self.store.list_users() if tenant_of(user) == self.tenant]

    def get_profile(self, user_id: str) -> Profile:
        return self.store.get_profile(user_id)


class Rankers:
    """One ranker per tenant for the server's ranking method, built on first use."""

    def __init__(self, service: TailorService, method: MethodSpec, task_name: str) -> None:
        self.service, self.method, self.task = service, method, get_task(task_name)
        self._rankers: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def ranker(self, tenant: str | None) -> Any:
        with self._lock:
            if tenant not in self._rankers:
                context = BuildContext(self.task, self.service.backend.count_tokens, k=self.service.config.k,
                                       store=TenantUsers(self.service.store, tenant),  # type: ignore[arg-type]
                                       backend=self.service.backend)
                self._rankers[tenant] = self.method.build(context)
            return self._rankers[tenant]

    def start(self, principal: Principal, user_id: str, body: RankBody) -> Any:
        """The ranking's steps for the user (a 404 for a user the caller cannot see)."""
        store_id = self.service.store_id(principal, user_id)
        try:
            profile = self.service.store.get_profile(store_id)
        except UnknownUserError:
            raise not_found(f"unknown user {user_id!r}", "user_id") from None
        firsts = {item.id: item for item in reversed(body.items)}  # the first of a repeated id wins
        candidates = [HistoryRecord(item.id, {"item": item.id, "text": item.text, "title": item.title or item.text})
                      for item in (firsts[key] for key in dict.fromkeys(item.id for item in body.items))]
        ranker = self.ranker(principal.tenant)
        question = getattr(self.task, "question", None) or self.task.instruction  # eval's (evaluation.ranking)
        return ranker.rank_steps(self.task, [(question, profile, candidates)])


ModelAnswers = Callable[[Request, list[GenerationRequest]], Awaitable[list[GenerationResult]]]


def add_rank_route(app: FastAPI, service: TailorService, caller: Callable[..., Awaitable[Principal]],
                   model_answers: ModelAnswers) -> None:
    """Register ``POST /v1/users/{user_id}/rank`` on ``app`` (when the server ranks)."""
    method, task_name = service.config.rank_method, service.config.rank_task
    if method is None:
        return
    rankers = Rankers(service, method if isinstance(method, MethodSpec) else MethodSpec.parse(method), task_name)

    @app.post("/v1/users/{user_id}/rank")
    async def rank(request: Request, user_id: UserId, body: RankBody, principal: Principal = Depends(caller)) -> Any:
        steps = await run_in_threadpool(rankers.start, principal, user_id, body)
        asked = await run_in_threadpool(advance_steps, steps, None)
        while _asks_the_model(asked):
            asked = await run_in_threadpool(advance_steps, steps, await model_answers(request, asked))
        ranked: Any = asked[0]
        items = list(zip(ranked.items, ranked.scores))[:body.top or len(ranked.items)]
        return {"user_id": user_id, "method": str(method), "task": rankers.task.name,
                "items": [{"id": item, "score": score if math.isfinite(score) else None, "rank": place}
                          for place, (item, score) in enumerate(items, start=1)]}


def _asks_the_model(step: Any) -> bool:
    """Whether a ranker's step is requests for the model (else it is the rankings)."""
    return isinstance(step, list) and bool(step) and isinstance(step[0], GenerationRequest)


__all__ = ["MAX_ITEMS", "RankBody", "RankItem", "Rankers", "TenantUsers", "add_rank_route"]
