"""Colossyan: ``GET /video-generation-jobs/{videoGenerationJobId}`` on https://app.colossyan.com/api/v1.

Reports seven states (``in_queue`` … ``deleted``), progress as ``progress`` out of
``maximumProgress``, and a ``videoId`` rather than a URL. Errors come without bodies.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from colossyan_client import AuthenticatedClient
from colossyan_client.api.default import get_video_generation_job_status
from colossyan_client.models import ColossyanJob

from .._adapter import BaseAdapter, Fields, final_progress
from .._status import JobStatus, State


class ColossyanAdapter(BaseAdapter):
    name: ClassVar[str] = "colossyan"
    client_class: ClassVar[type[Any]] = AuthenticatedClient
    endpoint: ClassVar[ModuleType] = get_video_generation_job_status
    model: ClassVar[type[Any]] = ColossyanJob
    states: ClassVar[dict[str, State]] = {
        "in_queue": State.QUEUED,
        "preprocessing": State.RUNNING,
        "preprocessing_finished": State.RUNNING,
        "generating": State.RUNNING,
        "finished": State.SUCCEEDED,
        "failed": State.FAILED,
        "deleted": State.CANCELED,
    }

    def to_status(self, task_id: str, model: ColossyanJob, fields: Fields) -> JobStatus:
        state, word = self.state(model.status, "status")
        progress = fields.fraction(model.progress, model.maximum_progress, "progress", "maximumProgress")
        return JobStatus(
            vendor=self.name,
            task_id=task_id,
            state=state,
            vendor_state=word,
            progress=final_progress(state, progress),
            video_id=fields.text(model.video_id, "videoId"),
            error=self.job_error(
                state,
                fields,
                message=None,
                default="Colossyan reported the job deleted"
                if state is State.CANCELED
                else "Colossyan reported the job failed (it gives no reason)",
            ),
            raw=model,
        )
