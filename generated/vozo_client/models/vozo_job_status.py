from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.vozo_job_state import VozoJobState
from ..types import UNSET, Unset

T = TypeVar("T", bound="VozoJobStatus")


@_attrs_define
class VozoJobStatus:
    """
    Attributes:
        status (VozoJobState): Current job status: pending, processing, done, failed
        video_url (str | Unset): When job is finished, the output video could be download using this URL.
    """

    status: VozoJobState
    video_url: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        status = self.status.value

        video_url = self.video_url

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "status": status,
            }
        )
        if video_url is not UNSET:
            field_dict["video_url"] = video_url

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        status = VozoJobState(d.pop("status"))

        video_url = d.pop("video_url", UNSET)

        vozo_job_status = cls(
            status=status,
            video_url=video_url,
        )

        vozo_job_status.additional_properties = d
        return vozo_job_status

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
