"""ezmodel (OpenAI-compatible Sora): ``GET /v1/videos/{task_id}`` on https://www.ezmodel.cloud.

Reports ``pending, processing, completed, failed`` and, being OpenAI-compatible, OpenAI's
``queued`` and ``in_progress``; progress 0-100; ``url``; ``error{code, message}``;
``created_at``, ``completed_at`` and ``expires_at`` (the download link's end) in Unix seconds.
An ``error`` object on a job that did not fail is reported in ``problems``, not as its error.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from ezmodel_client import AuthenticatedClient
from ezmodel_client.api.videos import get_video_task
from ezmodel_client.models import EzmodelVideo
from ezmodel_client.types import Unset

from .._adapter import BaseAdapter, Fields, final_progress
from .._status import JobStatus, State


class EzmodelAdapter(BaseAdapter):
    name: ClassVar[str] = "ezmodel"
    client_class: ClassVar[type[Any]] = AuthenticatedClient
    endpoint: ClassVar[ModuleType] = get_video_task
    model: ClassVar[type[Any]] = EzmodelVideo
    echoed_id: ClassVar[tuple[str, ...]] = ("id",)
    """The page: ``id`` is the "Video task ID", as the path's ``task_id`` is, and its examples ask
    for ``vid_abc123xyz456`` and answer with that ``id``."""
    states: ClassVar[dict[str, State]] = {
        "pending": State.QUEUED,
        "processing": State.RUNNING,
        "completed": State.SUCCEEDED,
        "failed": State.FAILED,
        # OpenAI's own words for the same states (ezmodel is OpenAI-compatible)
        "queued": State.QUEUED,
        "in_progress": State.RUNNING,
    }

    def to_status(self, task_id: str, model: EzmodelVideo, fields: Fields) -> JobStatus:
        state, word = self.state(model.status, "status", fields)
        urls = fields.videos(state, [(model.url, "url")])
        code = message = None
        error = model.error
        if not isinstance(error, Unset) and error is not None:
            message = fields.text(error.message, "error.message")
            code = fields.text(error.code, "error.code")
        return JobStatus(
            vendor=self.name,
            task_id=task_id,
            state=state,
            vendor_state=word,
            progress=final_progress(state, fields.percent(model.progress, "progress")),
            video_urls=urls,
            error=self.job_error(
                state,
                fields,
                message=message,
                code=code,
                default="ezmodel reported the job failed without an error message",
            ),
            created_at=fields.unix_time(model.created_at, "created_at"),
            completed_at=fields.unix_time(model.completed_at, "completed_at"),
            expires_at=fields.unix_time(model.expires_at, "expires_at"),
            raw=model,
        )
