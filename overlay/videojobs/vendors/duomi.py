"""Duomi (VEO models): ``GET /v1/videos/tasks/{task_id}`` on https://duomiapi.com.

Reports ``state`` as ``pending, running, succeeded, error``, progress 0-100, videos as
``data.videos[].url``, Unix-second ``create_time``/``update_time``, and the error in ``message``.
Its Apifox export marks every field required; the spec patch keeps only ``state`` required and
this adapter reports the others when missing (``required=True``).

Its answer's ``id`` is not checked against the task asked about (``echoed_id``): the page gives it
no description and no example, so it is not known to be the path's ``task_id`` (a reseller's
answer may carry its upstream's id), and a wrong guess would refuse every answer.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

from duomi_client import AuthenticatedClient
from duomi_client.api.tasks import get_video_task
from duomi_client.models import DuomiTask
from duomi_client.types import Unset

from .._adapter import BaseAdapter, Fields, final_progress
from .._status import JobStatus, State


class DuomiAdapter(BaseAdapter):
    name: ClassVar[str] = "duomi"
    client_class: ClassVar[type[Any]] = AuthenticatedClient
    endpoint: ClassVar[ModuleType] = get_video_task
    model: ClassVar[type[Any]] = DuomiTask
    states: ClassVar[dict[str, State]] = {
        "pending": State.QUEUED,
        "running": State.RUNNING,
        "succeeded": State.SUCCEEDED,
        "error": State.FAILED,
    }

    def to_status(self, task_id: str, model: DuomiTask, fields: Fields) -> JobStatus:
        state, word = self.state(model.state, "state", fields)
        data = model.data
        videos = None if isinstance(data, Unset) else data.videos
        found = [(v.url, f"data.videos[{i}].url") for i, v in enumerate(videos)] if isinstance(videos, list) else []
        urls = fields.videos(state, found)
        message = fields.text(model.message, "message")
        return JobStatus(
            vendor=self.name,
            task_id=task_id,
            state=state,
            vendor_state=word,
            progress=final_progress(state, fields.percent(model.progress, "progress", required=True)),
            video_urls=urls,
            error=self.job_error(
                state,
                fields,
                message=message if state is State.FAILED else None,
                default="Duomi reported an error without a message",
            ),
            created_at=fields.unix_time(model.create_time, "create_time", required=True),
            updated_at=fields.unix_time(model.update_time, "update_time", required=True),
            raw=model,
        )
