from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.jimmy_video_task import JimmyVideoTask


T = TypeVar("T", bound="JimmyVideoResponse")


@_attrs_define
class JimmyVideoResponse:
    """
    Attributes:
        code (str | Unset):  Example: 20000.
        msg (str | Unset):  Example: ok.
        data (JimmyVideoTask | Unset):
    """

    code: str | Unset = UNSET
    msg: str | Unset = UNSET
    data: JimmyVideoTask | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        code = self.code

        msg = self.msg

        data: dict[str, Any] | Unset = UNSET
        if not isinstance(self.data, Unset):
            data = self.data.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if code is not UNSET:
            field_dict["code"] = code
        if msg is not UNSET:
            field_dict["msg"] = msg
        if data is not UNSET:
            field_dict["data"] = data

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.jimmy_video_task import JimmyVideoTask

        d = dict(src_dict)
        code = d.pop("code", UNSET)

        msg = d.pop("msg", UNSET)

        _data = d.pop("data", UNSET)
        data: JimmyVideoTask | Unset
        if isinstance(_data, Unset):
            data = UNSET
        else:
            data = JimmyVideoTask.from_dict(_data)

        jimmy_video_response = cls(
            code=code,
            msg=msg,
            data=data,
        )

        jimmy_video_response.additional_properties = d
        return jimmy_video_response

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
