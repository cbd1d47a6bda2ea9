"""How long jobs take, in one place: what members' ETAs and the poll schedule learn from.

Per kind of job (with or without reference images): the latest durations (the ETA is their median) and
the cohort of the latest submitted jobs, finished or still running, that the poll schedule plans from.
"""

from __future__ import annotations

from bot.core.clock import Clock
from bot.core.models import Job
from bot.core.schedule import Cohort, typical_duration


class JobDurations:
    def __init__(self, clock: Clock, size: int, eta_window: int) -> None:
        self._clock = clock
        self._size = size
        self._eta_window = eta_window
        self._history: dict[bool, list[float]] = {}
        self._cohorts: dict[bool, Cohort] = {}
        # The schedule's sample per kind, refreshed at most once a second of the clock.
        self._planning: dict[bool, tuple[float, list[float]]] = {}

    def load(self, has_refs: bool, durations: list[float]) -> None:
        """The durations the store remembers (newest first), at start-up."""
        self._history[has_refs] = list(durations)
        self._cohorts[has_refs] = Cohort(self._size, durations)
        self._planning.pop(has_refs, None)

    def _cohort(self, has_refs: bool) -> Cohort:
        return self._cohorts.setdefault(has_refs, Cohort(self._size))

    def started(self, job: Job, submitted_at: float) -> None:
        self._cohort(job.has_references).started(job.id, submitted_at)

    def dropped(self, job: Job) -> None:
        """The job ended without a duration worth learning (cancelled, failed, timed out)."""
        self._cohort(job.has_references).dropped(job.id)

    def finished(self, job: Job, duration: float) -> None:
        history = self._history.setdefault(job.has_references, [])
        history.insert(0, duration)
        del history[self._size :]
        self._cohort(job.has_references).finished(job.id, duration)
        self._planning.pop(job.has_references, None)

    def sample(self, has_refs: bool) -> list[float]:
        """What the poll schedule plans from for this kind."""
        now = self._clock.time()
        cached = self._planning.get(has_refs)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        sample = self._cohort(has_refs).sample(now)
        self._planning[has_refs] = (now, sample)
        return sample

    def typical(self, has_refs: bool) -> float | None:
        """The ETA members see: the median of the latest jobs of the kind."""
        return typical_duration(self._history.get(has_refs, [])[: self._eta_window])
