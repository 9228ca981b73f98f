"""Vozo: ``GET /v1/video_generation/{task_id}`` on https://api.vozo.ai.

Reports ``pending, processing, done, failed``, no progress, one ``video_url``, and not the
task's id (so an answer cannot be checked to be this job's: ``echoed_id``); errors are
``{code, message, serverTs}`` on 400. The template for a new vendor: copy this.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from vozo_client import AuthenticatedClient
from vozo_client.api.default import get_video_generation
from vozo_client.models import VozoJobStatus

from .._adapter import BaseAdapter, Fields, final_progress
from .._status import JobStatus, State


class VozoAdapter(BaseAdapter):
    name: ClassVar[str] = "vozo"
    client_class: ClassVar[type[Any]] = AuthenticatedClient
    endpoint: ClassVar[ModuleType] = get_video_generation
    model: ClassVar[type[Any]] = VozoJobStatus
    states: ClassVar[dict[str, State]] = {
        "pending": State.QUEUED,
        "processing": State.RUNNING,
        "done": State.SUCCEEDED,
        "failed": State.FAILED,
    }

    def to_status(self, task_id: str, model: VozoJobStatus, fields: Fields) -> JobStatus:
        state, word = self.state(model.status, "status", fields)
        urls = fields.videos(state, [(model.video_url, "video_url")])
        return JobStatus(
            vendor=self.name,
            task_id=task_id,
            state=state,
            vendor_state=word,
            progress=final_progress(state, None),  # Vozo reports no progress
            video_urls=urls,
            error=self.job_error(
                state, fields, message=None, default="Vozo reported the job failed (it gives no reason)"
            ),
            raw=model,
        )
