"""Colossyan: ``GET /video-generation-jobs/{videoGenerationJobId}`` on https://app.colossyan.com/api/v1.

Reports seven states (``in_queue`` … ``deleted``), progress as ``progress`` out of
``maximumProgress``, and a ``videoId`` rather than a URL. Errors come without bodies.

The spec types both numbers and says no more ("the current progress", "the maximum progress
value"): a ``progress`` without a usable ``maximumProgress`` has no known scale, so it is
left out and named in ``problems``. The ``videoId`` ("of the provisioned generated video")
is kept on every state; it counts as a video (``has_video``) only on a finished job. The answer
"also contains all of the video-generation-job itself, which is not detailed here": no id the
page documents, so none is checked against the job asked about (``echoed_id``).
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
        state, word = self.state(model.status, "status", fields)
        progress = fields.fraction(model.progress, model.maximum_progress, "progress", "maximumProgress")
        video_id = fields.identifier(model.video_id, "videoId")
        fields.videos(state, (), video_id=video_id)  # a finished job without a videoId is named
        return JobStatus(
            vendor=self.name,
            task_id=task_id,
            state=state,
            vendor_state=word,
            progress=final_progress(state, progress),
            video_id=video_id,
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
