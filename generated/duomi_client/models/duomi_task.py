from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.duomi_task_action import DuomiTaskAction
from ..models.duomi_task_state import DuomiTaskState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.duomi_task_data import DuomiTaskData


T = TypeVar("T", bound="DuomiTask")


@_attrs_define
class DuomiTask:
    """
    Attributes:
        state (DuomiTaskState):
        id (str | Unset):
        data (DuomiTaskData | Unset):
        progress (int | Unset):
        create_time (int | Unset):
        update_time (int | Unset):
        message (str | Unset):
        action (DuomiTaskAction | Unset):
    """

    state: DuomiTaskState
    id: str | Unset = UNSET
    data: DuomiTaskData | Unset = UNSET
    progress: int | Unset = UNSET
    create_time: int | Unset = UNSET
    update_time: int | Unset = UNSET
    message: str | Unset = UNSET
    action: DuomiTaskAction | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        state = self.state.value

        id = self.id

        data: dict[str, Any] | Unset = UNSET
        if not isinstance(self.data, Unset):
            data = self.data.to_dict()

        progress = self.progress

        create_time = self.create_time

        update_time = self.update_time

        message = self.message

        action: str | Unset = UNSET
        if not isinstance(self.action, Unset):
            action = self.action.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "state": state,
            }
        )
        if id is not UNSET:
            field_dict["id"] = id
        if data is not UNSET:
            field_dict["data"] = data
        if progress is not UNSET:
            field_dict["progress"] = progress
        if create_time is not UNSET:
            field_dict["create_time"] = create_time
        if update_time is not UNSET:
            field_dict["update_time"] = update_time
        if message is not UNSET:
            field_dict["message"] = message
        if action is not UNSET:
            field_dict["action"] = action

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.duomi_task_data import DuomiTaskData

        d = dict(src_dict)
        state = DuomiTaskState(d.pop("state"))

        id = d.pop("id", UNSET)

        _data = d.pop("data", UNSET)
        data: DuomiTaskData | Unset
        if isinstance(_data, Unset):
            data = UNSET
        else:
            data = DuomiTaskData.from_dict(_data)

        progress = d.pop("progress", UNSET)

        create_time = d.pop("create_time", UNSET)

        update_time = d.pop("update_time", UNSET)

        message = d.pop("message", UNSET)

        _action = d.pop("action", UNSET)
        action: DuomiTaskAction | Unset
        if isinstance(_action, Unset):
            action = UNSET
        else:
            action = DuomiTaskAction(_action)

        duomi_task = cls(
            state=state,
            id=id,
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
