"""The image API client as the runner's `ImageService`: its typed errors and task statuses in the
core's terms (`bot.core.runner.ports`), so the core never imports this adapter.

Only the errors the client names are translated; anything else it raises (a bug, an answer no check
caught) passes through and the runner treats it as an unreadable answer.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.adapters.image_api import (
    ApiError,
    BadKeyError,
    ImageApi,
    MalformedAnswerError,
    RateLimitedError,
    RefusedError,
    TaskNotFoundError,
    TransientError,
    extract_images,
    extract_videos,
)
from bot.core.runner.ports import (
    ServiceBusy,
    ServiceError,
    ServiceKeyRefused,
    ServiceMalformed,
    ServiceRefused,
    ServiceUnreachable,
    TaskReport,
    TaskUnknown,
)


def service_error(error: ApiError) -> ServiceError:
    """The core's name for one of the client's errors."""
    if isinstance(error, RateLimitedError):
        return ServiceBusy(error.reason, error.retry_after)
    if isinstance(error, TransientError):
        return ServiceUnreachable(error.reason, reached_server=error.reached_server)
    if isinstance(error, BadKeyError):
        return ServiceKeyRefused(error.reason)
    if isinstance(error, RefusedError):
        return ServiceRefused(error.reason)
    if isinstance(error, TaskNotFoundError):
        return TaskUnknown(error.reason)
    if isinstance(error, MalformedAnswerError):
        return ServiceMalformed(error.reason)
    return ServiceMalformed(error.reason)


class ApiImageService:
    def __init__(self, api: ImageApi) -> None:
        self.api = api

    async def submit(self, prompt: str, aspect_ratio: str | None, images: Sequence[str]) -> str:
        try:
            return await self.api.submit(prompt, aspect_ratio, images)
        except ApiError as error:
            raise service_error(error) from error

    async def submit_video(
        self,
        prompt: str,
        *,
        duration: int,
        aspect_ratio: str | None,
        resolution: str | None,
        image: str | None,
    ) -> str:
        try:
            return await self.api.submit_video(
                prompt, duration=duration, aspect_ratio=aspect_ratio, resolution=resolution, image=image
            )
        except ApiError as error:
            raise service_error(error) from error

    async def poll(self, task_id: str) -> TaskReport:
        try:
            status = await self.api.poll(task_id)
        except ApiError as error:
            raise service_error(error) from error
        refs = [] if status.is_running else [image.ref for image in extract_images(status.result)]
        # The task does not say whether it made images or a video: both readings go to the runner.
        videos = [] if status.is_running else extract_videos(status.result)
        return TaskReport(
            status=status.status,
            is_running=status.is_running,
            trace_id=status.trace_id,
            error_message=status.error_message,
            image_refs=refs,
            video_refs=videos,
        )
