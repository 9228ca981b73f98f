from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.jimmy_video_status import JimmyVideoStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.jimmy_video_result import JimmyVideoResult


T = TypeVar("T", bound="JimmyVideoTask")


@_attrs_define
class JimmyVideoTask:
    """
    Attributes:
        task_id (str | Unset):
        status (JimmyVideoStatus | Unset): Task status, from the page's status table (任务状态说明): queued / pending /
            submitted (queued, progress 0), processing (1-99), completed (100, result.video_url set), failed (0,
            error_message set).
        progress (int | Unset):
        model (str | Unset):
        created_at (int | Unset):
        completed_at (int | Unset):
        result (JimmyVideoResult | Unset):
        error_message (str | Unset):
    """

    task_id: str | Unset = UNSET
    status: JimmyVideoStatus | Unset = UNSET
    progress: int | Unset = UNSET
    model: str | Unset = UNSET
    created_at: int | Unset = UNSET
    completed_at: int | Unset = UNSET
    result: JimmyVideoResult | Unset = UNSET
    error_message: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        task_id = self.task_id

        status: str | Unset = UNSET
        if not isinstance(self.status, Unset):
            status = self.status.value

        progress = self.progress

        model = self.model

        created_at = self.created_at

        completed_at = self.completed_at

        result: dict[str, Any] | Unset = UNSET
        if not isinstance(self.result, Unset):
            result = self.result.to_dict()

        error_message = self.error_message

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if task_id is not UNSET:
            field_dict["task_id"] = task_id
        if status is not UNSET:
            field_dict["status"] = status
        if progress is not UNSET:
            field_dict["progress"] = progress
        if model is not UNSET:
            field_dict["model"] = model
        if created_at is not UNSET:
            field_dict["created_at"] = created_at
        if completed_at is not UNSET:
            field_dict["completed_at"] = completed_at
        if result is not UNSET:
            field_dict["result"] = result
        if error_message is not UNSET:
            field_dict["error_message"] = error_message

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.jimmy_video_result import JimmyVideoResult

        d = dict(src_dict)
        task_id = d.pop("task_id", UNSET)

        _status = d.pop("status", UNSET)
        status: JimmyVideoStatus | Unset
        if isinstance(_status, Unset):
            status = UNSET
        else:
            status = JimmyVideoStatus(_status)

        progress = d.pop("progress", UNSET)

        model = d.pop("model", UNSET)

        created_at = d.pop("created_at", UNSET)

        completed_at = d.pop("completed_at", UNSET)

        _result = d.pop("result", UNSET)
        result: JimmyVideoResult | Unset
        if isinstance(_result, Unset):
            result = UNSET
        else:
            result = JimmyVideoResult.from_dict(_result)

        error_message = d.pop("error_message", UNSET)

        jimmy_video_task = cls(
            task_id=task_id,
            status=status,
            progress=progress,
            model=model,
            created_at=created_at,
            completed_at=completed_at,
            result=result,
            error_message=error_message,
        )

        jimmy_video_task.additional_properties = d
        return jimmy_video_task

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
