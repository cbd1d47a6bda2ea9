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
    """`name = call(fn)` in a Repository: `await repo.name(…)` runs `fn(session, …)` on the backend."""

    def __init__(self, fn: Callable[Concatenate[Session, P], R]) -> None:
        self._fn = fn
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

        async def bound(*args: P.args, **kwargs: P.kwargs) -> R:
            return await backend.run(fn, *args, **kwargs)

        return bound
