"""Duomi (VEO models): ``GET /v1/videos/tasks/{task_id}`` on https://duomiapi.com.

Reports ``state`` as ``pending, running, succeeded, error``, progress 0-100, videos as
``data.videos[].url``, Unix-second ``create_time``/``update_time``, and the error in ``message``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from duomi_client import AuthenticatedClient
from duomi_client.api.tasks import get_video_task
from duomi_client.models import DuomiTask

from .._adapter import BadField, BaseAdapter, final_progress, opt_str, percent, unix_time
from .._status import JobError, JobStatus, State


class DuomiAdapter(BaseAdapter):
    name: ClassVar[str] = "duomi"
    default_base_url: ClassVar[str] = "https://duomiapi.com"
    client_class: ClassVar[type[Any]] = AuthenticatedClient
    endpoint: ClassVar[ModuleType] = get_video_task
    states: ClassVar[dict[str, State]] = {
        "pending": State.QUEUED,
        "running": State.RUNNING,
        "succeeded": State.SUCCEEDED,
        "error": State.FAILED,
    }

    def to_status(self, task_id: str, model: DuomiTask) -> JobStatus:
        state, word = self.state(model.state)
        videos = model.data.videos
        if not isinstance(videos, list):
            raise BadField("data.videos", f"expected a list, got {type(videos).__name__}")
        urls = tuple(u for i, v in enumerate(videos) if (u := opt_str(v.url, f"data.videos[{i}].url")))
        message = opt_str(model.message, "message")
        return JobStatus(
            vendor=self.name,
            task_id=task_id,
            state=state,
            vendor_state=word,
            progress=final_progress(state, percent(model.progress, "progress")),
            video_urls=urls,
            error=JobError(message=message or "Duomi reported an error without a message")
            if state is State.FAILED
            else None,
            created_at=unix_time(model.create_time, "create_time"),
            updated_at=unix_time(model.update_time, "update_time"),
            raw=model,
        )
