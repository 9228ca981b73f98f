"""JimmyAI: ``GET /api/open-api/v1/videos/{taskId}`` on https://www.jimmyai.cn.

Wraps every answer in an envelope ``{code, msg, data}`` and answers errors with HTTP 200:
a ``code`` other than ``"20000"`` is an error. The video link in ``result.video_url`` is
valid for 3 days after completion.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import ModuleType
from typing import Any, ClassVar, Final

from jimmyai_client import AuthenticatedClient
from jimmyai_client.api.default import query_video
from jimmyai_client.models import JimmyVideoResponse
from jimmyai_client.types import Unset

from .._adapter import BaseAdapter, EnvelopeError, Fields, Unreadable, final_progress, json_type
from .._status import JobStatus, State

OK: Final = "20000"
"""The envelope code of a successful answer (the page's examples and code table)."""

LINK_LIFETIME: Final = timedelta(days=3)
"""The page: "视频链接有效期为3天" (the video link is valid for 3 days), counted from completion.
Without ``completed_at`` the expiry is unknown and named in ``problems``; no other time stands
in: the answer has no ``updated_at``, and ``created_at`` + 3 days would be too early, so a
live link would be taken for an expired one."""


def status_hint(code: str) -> int | None:
    """The HTTP status a JimmyAI code stands for. ASSUMPTION (not on the page): its codes are an
    HTTP status followed by two digits, as ``20000`` is 200 OK; so ``40401`` is a 404, ``42900``
    a 429 (and retried). A code of another form is a plain APIError."""
    head = code[:3]
    if len(code) == 5 and code.isascii() and code.isdigit() and 400 <= int(head) < 600:
        return int(head)
    return None


class JimmyaiAdapter(BaseAdapter):
    name: ClassVar[str] = "jimmyai"
    client_class: ClassVar[type[Any]] = AuthenticatedClient
    endpoint: ClassVar[ModuleType] = query_video
    model: ClassVar[type[Any]] = JimmyVideoResponse
    echoed_id: ClassVar[tuple[str, ...]] = ("data", "task_id")
    """ASSUMPTION (the spec names it, and says no more): the answer's ``data.task_id`` is the id of
    the task asked about (the path's ``taskId``, "The ID of the task to query"); the spec gives
    it no description and no example. If JimmyAI answered with another form of the id, every
    status call would be refused as another job's: the error names both ids."""
    millis: ClassVar[bool] = True
    """ASSUMPTION (not on the page): its times may be milliseconds. The spec types them ``int64``,
    as Java-style millisecond clocks are, and gives no example; seconds are read as seconds."""
    states: ClassVar[dict[str, State]] = {
        "queued": State.QUEUED,
        "pending": State.QUEUED,
        "submitted": State.QUEUED,
        "processing": State.RUNNING,
        "completed": State.SUCCEEDED,
        "failed": State.FAILED,
    }

    def check_envelope(self, body: Any) -> EnvelopeError | None:
        if not isinstance(body, Mapping):
            raise Unreadable(f"expected the {{code, msg, data}} envelope, got {json_type(body)}")
        code = body.get("code")
        if isinstance(code, int) and not isinstance(code, bool):
            code = str(code)
        if not isinstance(code, str):
            raise Unreadable("the envelope's code is " + ("missing" if code is None else json_type(code)))
        if code == OK:
            return None
        msg = body.get("msg")
        message = msg if isinstance(msg, str) and msg else f"JimmyAI answered with code {code}"
        return EnvelopeError(code, message, status_hint(code))

    def to_status(self, task_id: str, model: JimmyVideoResponse, fields: Fields) -> JobStatus:
        data = model.data
        if isinstance(data, Unset) or data is None:
            raise Unreadable("a successful envelope without data")
        state, word = self.state(data.status, "data.status", fields)
        result = data.result
        found = () if isinstance(result, Unset) or result is None else [(result.video_url, "data.result.video_url")]
        urls = fields.videos(state, found)
        completed_at = fields.unix_time(data.completed_at, "data.completed_at")
        expires_at = None
        if urls:
            if completed_at is None:
                fields.problem("expires_at", "unknown, the answer has no usable data.completed_at")
            else:
                expires_at = completed_at + LINK_LIFETIME
        message = fields.text(data.error_message, "data.error_message")
        return JobStatus(
            vendor=self.name,
            task_id=task_id,
            state=state,
            vendor_state=word,
            progress=final_progress(state, fields.percent(data.progress, "data.progress")),
            video_urls=urls,
            error=self.job_error(
                state, fields, message=message, default="JimmyAI reported the job failed without an error_message"
            ),
            created_at=fields.unix_time(data.created_at, "data.created_at"),
            completed_at=completed_at,
            expires_at=expires_at,
            raw=model,
        )
