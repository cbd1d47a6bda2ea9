"""How long jobs take, in one place: what members' ETAs and the poll schedule learn from.

Per kind of job (`Job.kind`: text, edit, video): the latest durations (the ETA is their median) and the
cohort of the latest submitted jobs, finished or still running, that the poll schedule plans from. Videos
take many times longer than images, so they learn apart and never skew an image's ETA.
"""

from __future__ import annotations

from bot.core.clock import Clock
from bot.core.models import Job
from bot.core.schedule import Cohort, typical_duration

KINDS = ("text", "edit", "video")


class JobDurations:
    def __init__(self, clock: Clock, size: int, eta_window: int) -> None:
        self._clock = clock
        self._size = size
        self._eta_window = eta_window
        self._history: dict[str, list[float]] = {}
        self._cohorts: dict[str, Cohort] = {}
        # The schedule's sample per kind, refreshed at most once a second of the clock.
        self._planning: dict[str, tuple[float, list[float]]] = {}

    def load(self, kind: str, durations: list[float]) -> None:
        """The durations the store remembers (newest first), at start-up."""
        self._history[kind] = list(durations)
        self._cohorts[kind] = Cohort(self._size, durations)
        self._planning.pop(kind, None)

    def _cohort(self, kind: str) -> Cohort:
        return self._cohorts.setdefault(kind, Cohort(self._size))

    def started(self, job: Job, submitted_at: float) -> None:
        self._cohort(job.kind).started(job.id, submitted_at)

    def dropped(self, job: Job) -> None:
        """The job ended without a duration worth learning (cancelled, failed, timed out)."""
        self._cohort(job.kind).dropped(job.id)

    def finished(self, job: Job, duration: float) -> None:
        history = self._history.setdefault(job.kind, [])
        history.insert(0, duration)
        del history[self._size :]
        self._cohort(job.kind).finished(job.id, duration)
        self._planning.pop(job.kind, None)

    def sample(self, kind: str) -> list[float]:
        """What the poll schedule plans from for this kind."""
        now = self._clock.time()
        cached = self._planning.get(kind)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1]
        sample = self._cohort(kind).sample(now)
        self._planning[kind] = (now, sample)
        return sample

    def typical(self, kind: str) -> float | None:
        """The ETA members see: the median of the latest jobs of the kind."""
        return typical_duration(self._history.get(kind, [])[: self._eta_window])
