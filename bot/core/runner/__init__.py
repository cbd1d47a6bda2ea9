"""The job runner, by stage: admission, submitting, polling, delivering; what it needs from outside as
Protocols (`ports`), and one registry of what this process holds.

A job travels admission → submitting → polling → delivering; `engine.JobRunner` builds the stages
around one set of shared parts (`shared.Parts`) and is what commands, the terminal and the bench use.
"""

from bot.core.runner.admission import Cancelled
from bot.core.runner.engine import JobRunner
from bot.core.runner.job_states import IllegalTransition
from bot.core.runner.outcome_texts import (
    MSG_BUSY,
    MSG_INTERRUPTED,
    MSG_LOST,
    MSG_NO_IMAGE,
    MSG_NOT_MADE,
    MSG_OUTAGE,
    MSG_UNAVAILABLE,
    MSG_UNKNOWN,
    MSG_UNREACHABLE,
    UNDELIVERABLE,
)
from bot.core.runner.polling import PROBE_TASK_ID
from bot.core.runner.ports import DeliveryReceipt, JobSink
from bot.core.runner.runner_config import RunnerConfig

__all__ = [
    "MSG_BUSY",
    "MSG_INTERRUPTED",
    "MSG_LOST",
    "MSG_NOT_MADE",
    "MSG_NO_IMAGE",
    "MSG_OUTAGE",
    "MSG_UNAVAILABLE",
    "MSG_UNKNOWN",
    "MSG_UNREACHABLE",
    "PROBE_TASK_ID",
    "UNDELIVERABLE",
    "Cancelled",
    "DeliveryReceipt",
    "IllegalTransition",
    "JobRunner",
    "JobSink",
    "RunnerConfig",
]
