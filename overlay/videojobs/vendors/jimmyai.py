"""JimmyAI: ``GET /api/open-api/v1/videos/{taskId}`` on https://www.jimmyai.cn.

Wraps every answer in an envelope ``{code, msg, data}`` and answers errors with HTTP 200:
a ``code`` other than ``"20000"`` is an error. Its codes are an HTTP status followed by two
digits (``20000`` is 200 OK), so ``40401`` is treated as a 404 and ``42900`` as a 429.
The video link in ``result.video_url`` is valid for 3 days after completion.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import ModuleType
from typing import Any, ClassVar

from jimmyai_client import AuthenticatedClient
from jimmyai_client.api.default import query_video
from jimmyai_client.models import JimmyVideoResponse
from jimmyai_client.types import Unset

from .._adapter import BadField, BaseAdapter, EnvelopeError, final_progress, is_unset, opt_str, percent, unix_time
from .._status import JobError, JobStatus, State

OK = "20000"
LINK_LIFETIME = timedelta(days=3)


def _envelope_error(code: Any, msg: Any) -> EnvelopeError | None:
    if code is None or str(code) == OK:
        return None
    code = str(code)
    hint = int(code[:3]) if len(code) >= 3 and code[:3].isdigit() and 400 <= int(code[:3]) < 600 else None
    return EnvelopeError(code, str(msg) if msg else f"JimmyAI answered with code {code}", hint)


class JimmyaiAdapter(BaseAdapter):
    name: ClassVar[str] = "jimmyai"
    default_base_url: ClassVar[str] = "https://www.jimmyai.cn"
    client_class: ClassVar[type[Any]] = AuthenticatedClient
    endpoint: ClassVar[ModuleType] = query_video
    states: ClassVar[dict[str, State]] = {
        "queued": State.QUEUED,
        "pending": State.QUEUED,
        "submitted": State.QUEUED,
        "processing": State.RUNNING,
        "completed": State.SUCCEEDED,
        "failed": State.FAILED,
    }

    def envelope_error(self, body: Any) -> EnvelopeError | None:
        if not isinstance(body, Mapping):
            return None
        return _envelope_error(body.get("code"), body.get("msg"))

    def to_status(self, task_id: str, model: JimmyVideoResponse) -> JobStatus:
        if is_unset(model.code):
            raise BadField("code", "the envelope has no code")
        if not isinstance(model.code, str):
            raise BadField("code", f"expected a string, got {type(model.code).__name__}")
        if (error := _envelope_error(model.code, None if is_unset(model.msg) else model.msg)) is not None:
            raise error
        data = model.data
        if data is None or isinstance(data, Unset):
            raise BadField("data", "a successful envelope without data")
        if is_unset(data.status):
            raise BadField("data.status", "missing")
        state, word = self.state(data.status)
        result = data.result
        url = (
            None if result is None or isinstance(result, Unset) else opt_str(result.video_url, "data.result.video_url")
        )
        completed_at = unix_time(data.completed_at, "data.completed_at")
        message = opt_str(data.error_message, "data.error_message")
        if message is None and state is State.FAILED:
            message = "JimmyAI reported the job failed without an error_message"
        return JobStatus(
            vendor=self.name,
            task_id=task_id,
            state=state,
            vendor_state=word,
            progress=final_progress(state, percent(data.progress, "data.progress")),
            video_urls=(url,) if url else (),
            error=JobError(message=message) if message and state is State.FAILED else None,
            created_at=unix_time(data.created_at, "data.created_at"),
            completed_at=completed_at,
            expires_at=completed_at + LINK_LIFETIME if completed_at and url else None,
            raw=model,
        )
