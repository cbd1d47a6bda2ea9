"""The job mix every scenario uses: durations log-uniform between 5 and 90 seconds."""

from __future__ import annotations

from typing import Any

from sandbox.server import Sandbox, SandboxConfig, log_uniform

LOW, HIGH = 5.0, 90.0


draw = log_uniform(LOW, HIGH)


def adaptive_schedule_args() -> tuple[float, float, float]:
    """(min_interval, max_interval, first_poll) exactly as the bot builds its PollSchedule from the
    default settings, so the benchmark measures what a fresh install runs."""
    from bot.ops.config import Secret, Settings

    s = Settings(discord_token=None, api_key=Secret("bench"))
    return s.poll_min_interval, s.poll_max_interval, s.poll_first_delay


class PairedSandbox(Sandbox):
    """A sandbox whose task durations are planned by prompt, so that two runners submitting the same
    prompts get exactly the same job mix, whatever order their submits arrive in.

    It hooks the sandbox's task creation: `force_next` queues an outcome and `_create_task` takes it at
    once, with no await in between, so the planned duration lands on this very submit. The benchmark
    checks every task's duration against the plan afterwards, so a change in the sandbox's internals
    fails loudly instead of quietly unpairing the mix."""

    def __init__(self, plan: dict[str, float], config: SandboxConfig) -> None:
        super().__init__(config)
        self.plan = plan

    def _create_task(self, submission: Any) -> Any:
        self.force_next(duration=self.plan[submission.prompt])
        return super()._create_task(submission)
