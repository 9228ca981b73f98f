from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.duomi_task_action import DuomiTaskAction
from ..models.duomi_task_state import DuomiTaskState

if TYPE_CHECKING:
    from ..models.duomi_task_data import DuomiTaskData


T = TypeVar("T", bound="DuomiTask")


@_attrs_define
class DuomiTask:
    """
    Attributes:
        id (str):
        state (DuomiTaskState):
        data (DuomiTaskData):
        progress (int):
        create_time (int):
        update_time (int):
        message (str):
        action (DuomiTaskAction):
    """

    id: str
    state: DuomiTaskState
    data: DuomiTaskData
    progress: int
    create_time: int
    update_time: int
    message: str
    action: DuomiTaskAction
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        state = self.state.value

        data = self.data.to_dict()

        progress = self.progress

        create_time = self.create_time

        update_time = self.update_time

        message = self.message

        action = self.action.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "state": state,
                "data": data,
                "progress": progress,
                "create_time": create_time,
                "update_time": update_time,
                "message": message,
                "action": action,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.duomi_task_data import DuomiTaskData

        d = dict(src_dict)
        id = d.pop("id")

        state = DuomiTaskState(d.pop("state"))

        data = DuomiTaskData.from_dict(d.pop("data"))

        progress = d.pop("progress")

        create_time = d.pop("create_time")

        update_time = d.pop("update_time")

        message = d.pop("message")

        action = DuomiTaskAction(d.pop("action"))

        duomi_task = cls(
            id=id,
            state=state,
            data=data,
            progress=progress,
            create_time=create_time,
            update_time=update_time,
            message=message,
            action=action,
        )

        duomi_task.additional_properties = d
        return duomi_task

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
