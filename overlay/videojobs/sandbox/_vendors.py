"""Each vendor's answers, in the exact shapes its page documents.

One ``Renderer`` per vendor: the word it uses for a job's phase, its 200 body, and its
error bodies. A sixth vendor adds one renderer and one line in ``RENDERERS``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ._jobs import Phase, Script, Snapshot

__all__ = ["RENDERERS", "Job", "Renderer"]


@dataclass
class Job:
    """A job the sandbox knows: its script and what happened to it."""

    vendor: str
    task_id: str
    script: Script
    created: float  # sandbox clock (real seconds) at creation
    created_unix: float  # the vendor's creation timestamp
    polls: int = 0
    terminal_seen_at: float | None = None  # sandbox clock when a poll first answered a terminal state


def video_url(job: Job, n: int = 0) -> str:
    suffix = f"-{n}" if n else ""
    return f"https://videos.sandbox.invalid/{job.vendor}/{quote(job.task_id, safe='')}{suffix}.mp4"


Body = dict[str, Any]


@dataclass(frozen=True)
class Renderer:
    phases: dict[str, Phase]  # every state word on the vendor's page → the phase it stands for
    word: Callable[[Snapshot, Script], str]
    body: Callable[[Job, Snapshot, str, float], Body]  # (job, snapshot, vendor word, now unix)
    error: Callable[[int, str, str], tuple[int, bytes]]  # (http status, code, message) -> (status, body)


def _json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _failure(script: Script) -> str:
    return "content moderation rejected the prompt" if script.outcome == "failed" else "the job was canceled"


# --- Vozo: {status, video_url}; errors {code, message, serverTs} ---------------------------------


def _vozo_word(s: Snapshot, script: Script) -> str:
    return {"queued": "pending", "running": "processing", "succeeded": "done"}.get(s.phase, "failed")


def _vozo_body(job: Job, s: Snapshot, word: str, now: float) -> Body:
    body: Body = {"status": word}
    if word == "done" and job.script.video:
        body["video_url"] = video_url(job)
    return body


def _vozo_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, _json({"code": code, "message": message, "serverTs": "1705334400123"})


# --- Duomi: the whole task, videos as data.videos[].url -------------------------------------------


def _duomi_word(s: Snapshot, script: Script) -> str:
    return {"queued": "pending", "running": "running", "succeeded": "succeeded"}.get(s.phase, "error")


def _duomi_body(job: Job, s: Snapshot, word: str, now: float) -> Body:
    videos = [{"url": video_url(job, n)} for n in range(2)] if word == "succeeded" and job.script.video else []
    return {
        "id": job.task_id,
        "state": word,
        "data": {"videos": videos},
        "progress": round(s.progress * 100),
        "create_time": int(job.created_unix),
        "update_time": int(now),
        "message": _failure(job.script) if word == "error" else "",
        "action": "generate",
    }


def _duomi_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, _json({"code": code, "message": message})


# --- ezmodel: OpenAI-style video object; errors {error: {message, code}} --------------------------


def _ez_word(s: Snapshot, script: Script) -> str:
    return {"queued": "pending", "running": "processing", "succeeded": "completed"}.get(s.phase, "failed")


def _ez_body(job: Job, s: Snapshot, word: str, now: float) -> Body:
    body: Body = {
        "id": job.task_id,
        "object": "video",
        "model": "sora-1.0",
        "status": word,
        "progress": round(s.progress * 100),
        "created_at": int(job.created_unix),
        "seconds": "10.0",
        "size": "1920x1080",
    }
    if word == "completed":
        done = int(job.created_unix + (s.ended_at or s.elapsed))
        body["completed_at"] = done
        if job.script.video:
            body["expires_at"] = done + 86400
            body["url"] = video_url(job)
    if word == "failed":
        body["error"] = {"message": _failure(job.script), "code": "content_policy_violation"}
    body["metadata"] = {"fps": 30, "seed": 12345}
    return body


def _ez_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, _json({"error": {"message": message, "code": code}})


# --- Colossyan: seven states, progress out of maximumProgress, a videoId; errors without bodies ---


COLOSSYAN_MAX = 200


def _colossyan_word(s: Snapshot, script: Script) -> str:
    if s.phase == "running":
        return "preprocessing" if s.progress < 0.10 else "preprocessing_finished" if s.progress < 0.15 else "generating"
    return {"queued": "in_queue", "succeeded": "finished", "failed": "failed", "canceled": "deleted"}[s.phase]


def _colossyan_body(job: Job, s: Snapshot, word: str, now: float) -> Body:
    body: Body = {"status": word, "progress": round(s.progress * COLOSSYAN_MAX), "maximumProgress": COLOSSYAN_MAX}
    if job.script.video and word != "deleted":
        body["videoId"] = "video-" + hashlib.blake2b(job.task_id.encode(), digest_size=6).hexdigest()
    return body


def _colossyan_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    return status, b""


# --- JimmyAI: an envelope {code, msg, data}, errors as HTTP 200 with another code ------------------


def _jimmy_word(s: Snapshot, script: Script) -> str:
    if s.phase == "queued":
        third = s.elapsed / max(script.queue, 1e-9)
        return "submitted" if third < 1 / 3 else "pending" if third < 2 / 3 else "queued"
    return {"running": "processing", "succeeded": "completed"}.get(s.phase, "failed")


def _jimmy_body(job: Job, s: Snapshot, word: str, now: float) -> Body:
    data: Body = {
        "task_id": job.task_id,
        "status": word,
        "progress": round(s.progress * 100) if word in ("processing", "completed") else 0,
        "model": "jimmy-video-1",
        "created_at": int(job.created_unix),
    }
    if word == "completed":
        data["completed_at"] = int(job.created_unix + (s.ended_at or s.elapsed))
        if job.script.video:
            data["result"] = {"video_url": video_url(job)}
    if word == "failed":
        data["error_message"] = _failure(job.script)
    return {"code": "20000", "msg": "ok", "data": data}


def _jimmy_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    envelope_code = f"{status}{'01' if status == 404 else '00'}"
    return 200, _json({"code": envelope_code, "msg": message})


# The pages' state tables, as the sandbox reads them (not the client's adapters: the sandbox
# stands in for the vendors, so it keeps its own reading of what each word means).
_COLOSSYAN: dict[str, Phase] = {
    "in_queue": "queued",
    "preprocessing": "running",
    "preprocessing_finished": "running",
    "generating": "running",
    "finished": "succeeded",
    "failed": "failed",
    "deleted": "canceled",
}
_DUOMI: dict[str, Phase] = {"pending": "queued", "running": "running", "succeeded": "succeeded", "error": "failed"}
_EZMODEL: dict[str, Phase] = {
    "pending": "queued",
    "processing": "running",
    "completed": "succeeded",
    "failed": "failed",
}
_JIMMYAI: dict[str, Phase] = {
    "queued": "queued",
    "pending": "queued",
    "submitted": "queued",
    "processing": "running",
    "completed": "succeeded",
    "failed": "failed",
}
_VOZO: dict[str, Phase] = {"pending": "queued", "processing": "running", "done": "succeeded", "failed": "failed"}

RENDERERS: dict[str, Renderer] = {
    "colossyan": Renderer(_COLOSSYAN, _colossyan_word, _colossyan_body, _colossyan_error),
    "duomi": Renderer(_DUOMI, _duomi_word, _duomi_body, _duomi_error),
    "ezmodel": Renderer(_EZMODEL, _ez_word, _ez_body, _ez_error),
    "jimmyai": Renderer(_JIMMYAI, _jimmy_word, _jimmy_body, _jimmy_error),
    "vozo": Renderer(_VOZO, _vozo_word, _vozo_body, _vozo_error),
}
