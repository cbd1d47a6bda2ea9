"""Repositories reached by intent (`store.jobs.claim_due(…)`): a repository function written once as
`fn(session, …)` becomes an awaitable method of its repository through `call`, which runs it on the
store's backend (SQLite: its writer thread; PostgreSQL: a pooled connection). No method body forwards
by hand."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from bot.adapters.store.interface import Backend, Session

P = ParamSpec("P")
R = TypeVar("R")


class Repository:
    """One group of intents on the store's backend."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend


class call(Generic[P, R]):
    """`name = call(fn)` in a Repository: `await repo.name(…)` runs `fn(session, …)` on the backend.
    `leases=True`: on the backend's lease lane (`Backend.run_leases`), for the lease loop's calls."""

    def __init__(self, fn: Callable[Concatenate[Session, P], R], *, leases: bool = False) -> None:
        self._fn = fn
        self._leases = leases
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, repo: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, repo: Repository, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, R]]: ...

    def __get__(
        self, repo: Repository | None, owner: type[Any]
    ) -> Self | Callable[P, Coroutine[Any, Any, R]]:
        if repo is None:
            return self
        backend, fn = repo._backend, self._fn
        run = backend.run_leases if self._leases else backend.run

        async def bound(*args: P.args, **kwargs: P.kwargs) -> R:
            return await run(fn, *args, **kwargs)

        return bound
