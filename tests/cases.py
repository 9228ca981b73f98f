"""What each vendor documents, as test data: one VendorCase per vendor.

The conformance suites (tests/test_generated_clients.py, tests/test_conformance.py) run
the same tests for every vendor; a vendor supplies only fixtures here: a body for every
documented state and error, and what each means. Where it lives (server, status path), its
typed client's names (endpoint module, model, state enum) and where its answer keeps the
state are read from its spec (the ``openapi.json`` in its generated package) and its adapter,
never restated. The vendors are the registry's (pyproject.toml's entry points): a sixth
vendor adds one entry to CASES.
"""

from __future__ import annotations

import copy
import functools
import importlib
import itertools
import os
import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from scripts import specs
from tests.spec_check import patched_doc
from videojobs import known_vendors
from videojobs._registry import adapter_class


@dataclass(frozen=True)
class StateCase:
    vendor_state: str
    state: str  # videojobs.State value
    body: dict[str, Any]
    progress: float | None
    video_urls: tuple[str, ...] = ()
    video_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class VendorCase:
    slug: str
    states: list[StateCase]
    error_status: int | None = None  # the documented error response's status code
    error_body: dict[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # where the meaning checks put what they try (paths into a state's body; ints index lists)
    url_field: tuple[str | int, ...] | None = None  # one video URL; None: the vendor returns only an id
    video_field: tuple[str | int, ...] = ()  # what holds the video(s): left out for "succeeded, no video"
    progress_field: tuple[str, ...] | None = None  # the progress number; None: the vendor reports none
    progress_full: float = 100.0  # the progress_field value that means done
    # where the answer repeats the id of the job asked about, when the vendor's page documents one
    # (the adapter's echoed_id); the fixtures hold the page examples' ids: see for_task
    id_field: tuple[str, ...] = ()

    def first(self, state: str) -> StateCase:
        """The first documented state case that maps to ``state`` (a videojobs.State value)."""
        return next(sc for sc in self.states if sc.state == state)

    # --- read from the vendor's spec and adapter, not restated -----------------------------------

    @property
    def package(self) -> str:
        return f"{self.slug}_client"

    @property
    def base_url(self) -> str:
        """The vendor's real server: the spec's first."""
        url: str = patched_doc(self.slug)["servers"][0]["url"]
        return url

    @property
    def path(self) -> str:
        """The spec's status path, with ``{id}`` for the task id."""
        (template,) = [p for p, item in patched_doc(self.slug)["paths"].items() if "get" in item and "{" in p]
        return re.sub(r"\{[^}]*\}", "{id}", template)

    @property
    def module(self) -> str:
        """The generated endpoint module the adapter calls, relative to the package."""
        return adapter_class(self.slug).endpoint.__name__.removeprefix(f"{self.package}.")

    @property
    def model(self) -> str:
        """The class name of the adapter's 200 model."""
        return adapter_class(self.slug).model.__name__

    @property
    def enum_field(self) -> tuple[str, ...]:
        """Where the state sits in the 200 answer (an attribute path): the spec's status enum."""
        return _state_field(self.slug)

    @property
    def enum(self) -> str:
        """The class name of the generated state enum (the type the model gives that field)."""
        return self.enum_class().__name__

    def endpoint(self) -> ModuleType:
        return importlib.import_module(f"{self.package}.{self.module}")

    def model_class(self) -> Any:
        return adapter_class(self.slug).model

    def enum_class(self) -> Any:
        value: Any = self.model_class().from_dict(self.states[0].body)
        for attr in self.enum_field:
            value = getattr(value, attr)
        return type(value)


@functools.cache
def _state_field(slug: str) -> tuple[str, ...]:
    """The dotted path of the one ``status``/``state`` enum of the 200 answer (as scripts.specs reads it)."""
    answers = [where.rsplit(" ", 1)[-1] for where in specs.summarize(patched_doc(slug)).enums]  # "<op> 200.a.b"
    found = [
        tuple(where.split(".")[1:])
        for where in answers
        if where.startswith("200.") and "[]" not in where and where.rsplit(".", 1)[-1] in specs.STATUS_FIELDS
    ]
    assert len(found) == 1, f"{slug}: expected one status enum in the 200 answer, found {found}"
    return found[0]


T0 = 1705334400  # 2024-01-15T16:00:00Z, the timestamp ezmodel's page uses


def _duomi(state: str, progress: int, videos: list[str], message: str = "") -> dict[str, Any]:
    return {
        "id": "8cb280b3-442e-1db2-43f0-6e73616eb474",
        "state": state,
        "data": {"videos": [{"url": u} for u in videos]},
        "progress": progress,
        "create_time": T0,
        "update_time": T0 + 95,
        "message": message,
        "action": "generate",
    }


def _colossyan(status: str, progress: float, video_id: str | None = "vid-77") -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "progress": progress, "maximumProgress": 200}
    if video_id:
        body["videoId"] = video_id
    return body


def _jimmy(status: str, progress: int, **extra: Any) -> dict[str, Any]:
    data = {"task_id": "jt-42", "status": status, "progress": progress, "model": "jimmy-video-1", "created_at": T0}
    data.update(extra)
    return {"code": "20000", "msg": "ok", "data": data}


EZ_PROCESSING = {
    "id": "vid_abc123xyz456",
    "object": "video",
    "model": "sora-1.0",
    "status": "processing",
    "progress": 45,
    "created_at": T0,
    "seconds": "10.0",
    "size": "1920x1080",
    "metadata": {"fps": 30, "seed": 12345},
}
EZ_COMPLETED = {
    **EZ_PROCESSING,
    "status": "completed",
    "progress": 100,
    "completed_at": 1705334520,
    "expires_at": 1705420800,
    "url": "https://storage.example.com/videos/vid_abc123xyz456.mp4",
}
EZ_FAILED = {
    "id": "vid_abc123xyz456",
    "object": "video",
    "model": "sora-1.0",
    "status": "failed",
    "progress": 0,
    "created_at": T0,
    "seconds": "10.0",
    "error": {
        "message": "Content policy violation: inappropriate content detected",
        "code": "content_policy_violation",
    },
}

VOZO_URL = "https://cdn.vozo.ai/videos/task-123.mp4"
DUOMI_URLS = ["https://cdn.duomiapi.com/v/a.mp4", "https://cdn.duomiapi.com/v/b.mp4"]
JIMMY_URL = "https://cdn.jimmyai.cn/v/jt-42.mp4"

CASES: dict[str, VendorCase] = {
    "colossyan": VendorCase(
        slug="colossyan",
        states=[
            StateCase("in_queue", "queued", _colossyan("in_queue", 0), 0.0, video_id="vid-77"),
            StateCase("preprocessing", "running", _colossyan("preprocessing", 20), 0.1, video_id="vid-77"),
            StateCase(
                "preprocessing_finished", "running", _colossyan("preprocessing_finished", 50), 0.25, video_id="vid-77"
            ),
            StateCase("generating", "running", _colossyan("generating", 150), 0.75, video_id="vid-77"),
            StateCase("finished", "succeeded", _colossyan("finished", 200), 1.0, video_id="vid-77"),
            StateCase("failed", "failed", _colossyan("failed", 30), 0.15, video_id="vid-77"),
            StateCase("deleted", "canceled", _colossyan("deleted", 0, video_id=None), 0.0),
        ],
        error_status=404,
        error_body=None,  # Colossyan documents its errors without bodies
        video_field=("videoId",),
        progress_field=("progress",),
        progress_full=200,  # maximumProgress in these bodies
    ),
    "duomi": VendorCase(
        slug="duomi",
        states=[
            StateCase("pending", "queued", _duomi("pending", 0, []), 0.0),
            StateCase("running", "running", _duomi("running", 37, []), 0.37),
            StateCase(
                "succeeded", "succeeded", _duomi("succeeded", 100, DUOMI_URLS), 1.0, video_urls=tuple(DUOMI_URLS)
            ),
            StateCase(
                "error",
                "failed",
                _duomi("error", 12, [], message="prompt rejected by safety filter"),
                0.12,
                error_message="prompt rejected by safety filter",
            ),
        ],
        url_field=("data", "videos", 0, "url"),
        video_field=("data", "videos"),
        progress_field=("progress",),
    ),
    "ezmodel": VendorCase(
        slug="ezmodel",
        states=[
            StateCase("pending", "queued", {**EZ_PROCESSING, "status": "pending", "progress": 0}, 0.0),
            StateCase("processing", "running", EZ_PROCESSING, 0.45),
            StateCase("completed", "succeeded", EZ_COMPLETED, 1.0, video_urls=(EZ_COMPLETED["url"],)),
            StateCase(
                "failed",
                "failed",
                EZ_FAILED,
                0.0,
                error_code="content_policy_violation",
                error_message="Content policy violation: inappropriate content detected",
            ),
            # OpenAI-compatible servers also say queued / in_progress
            StateCase("queued", "queued", {**EZ_PROCESSING, "status": "queued", "progress": 0}, 0.0),
            StateCase("in_progress", "running", {**EZ_PROCESSING, "status": "in_progress", "progress": 60}, 0.6),
        ],
        error_status=404,
        error_body={"error": {"message": "Video task not found", "code": "task_not_found"}},
        error_code="task_not_found",
        error_message="Video task not found",
        url_field=("url",),
        video_field=("url",),
        progress_field=("progress",),
        id_field=("id",),  # the page: id, "Video task ID", as the path's task_id is
    ),
    "jimmyai": VendorCase(
        slug="jimmyai",
        states=[
            StateCase("queued", "queued", _jimmy("queued", 0), 0.0),
            StateCase("pending", "queued", _jimmy("pending", 0), 0.0),
            StateCase("submitted", "queued", _jimmy("submitted", 0), 0.0),
            StateCase("processing", "running", _jimmy("processing", 64), 0.64),
            StateCase(
                "completed",
                "succeeded",
                _jimmy("completed", 100, completed_at=T0 + 180, result={"video_url": JIMMY_URL}),
                1.0,
                video_urls=(JIMMY_URL,),
            ),
            StateCase(
                "failed",
                "failed",
                _jimmy("failed", 0, error_message="model overloaded, please retry"),
                0.0,
                error_message="model overloaded, please retry",
            ),
        ],
        error_status=200,  # JimmyAI answers errors with HTTP 200 and a code other than "20000"
        error_body={"code": "40401", "msg": "task not found"},
        error_code="40401",
        error_message="task not found",
        url_field=("data", "result", "video_url"),
        video_field=("data", "result"),
        progress_field=("data", "progress"),
        id_field=("data", "task_id"),  # the spec: data.task_id, of the task the path's taskId asks about
    ),
    "vozo": VendorCase(
        slug="vozo",
        states=[
            StateCase("pending", "queued", {"status": "pending"}, None),
            StateCase("processing", "running", {"status": "processing"}, None),
            StateCase("done", "succeeded", {"status": "done", "video_url": VOZO_URL}, 1.0, video_urls=(VOZO_URL,)),
            StateCase("failed", "failed", {"status": "failed"}, None),
        ],
        error_status=400,
        error_body={"code": "InvalidTaskId", "message": "task_id is not valid", "serverTs": "1705334400123"},
        error_code="InvalidTaskId",
        error_message="task_id is not valid",
        url_field=("video_url",),
        video_field=("video_url",),
    ),
}


def _extra_cases() -> None:
    """Fixtures of vendors installed from outside this repository: ``VIDEOJOBS_EXTRA_CASES=module[,module]``,
    each module defining ``CASE`` (tests/test_sixth_vendor.py uses it)."""
    for name in filter(None, os.environ.get("VIDEOJOBS_EXTRA_CASES", "").split(",")):
        case: VendorCase = importlib.import_module(name).CASE
        CASES[case.slug] = case


_extra_cases()

VENDORS = list(known_vendors())
"""The registry's vendors (pyproject.toml's entry points), the one list: a vendor without a case here
fails test_conformance.py's test_every_vendor_has_a_case_and_a_spec_the_sandbox_serves."""


# --- editing a state's body (the meaning checks) ----------------------------------------------


def field_name(path: tuple[str | int, ...]) -> str:
    """How problems name a field: ``data.videos[0].url``."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def put(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of ``body`` with ``value`` at ``path`` (objects and list items made as needed)."""
    body = copy.deepcopy(body)
    node: Any = body
    for key, nxt in itertools.pairwise(path):
        if isinstance(key, int):
            while len(node) <= key:
                node.append({} if isinstance(nxt, str) else [])
            node = node[key]
        else:
            if not isinstance(node.get(key), (dict, list)):
                node[key] = [] if isinstance(nxt, int) else {}
            node = node[key]
    if isinstance(path[-1], int):
        while len(node) <= path[-1]:
            node.append(None)
    node[path[-1]] = value
    return body


def echoed(slug: str, body: Any) -> Any:
    """The job's id ``body`` repeats (at the vendor's ``id_field``); None when it holds none."""
    path = CASES[slug].id_field
    node: Any = body if path else None
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def for_task(slug: str, body: Any, task_id: str) -> Any:
    """A copy of ``body`` as the answer about ``task_id``: the job's id it repeats (a string at the
    vendor's ``id_field``), if any, is ``task_id``. The fixtures hold the ids of the vendors' page
    examples; a test that means a normal answer about the job it asks for answers with this."""
    body = copy.deepcopy(body)
    found = echoed(slug, body)
    if isinstance(found, str) and found:
        body = put(body, CASES[slug].id_field, task_id)
    return body


def foreign(slug: str, body: Any, task_id: str) -> bool:
    """Whether ``body`` names another job than ``task_id`` (a non-empty string id of another job)."""
    found = echoed(slug, body)
    return isinstance(found, str) and found != "" and found != task_id


def without(body: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    """A copy of ``body`` without the field at ``path``."""
    body = copy.deepcopy(body)
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return body


def all_states() -> list[tuple[str, StateCase]]:
    return [(slug, sc) for slug in VENDORS for sc in CASES[slug].states]


def state_id(item: tuple[str, StateCase]) -> str:
    return f"{item[0]}-{item[1].vendor_state}"
