from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.colossyan_job_status import ColossyanJobStatus
from ..types import UNSET, Unset

T = TypeVar("T", bound="ColossyanJob")


@_attrs_define
class ColossyanJob:
    """
    Attributes:
        status (ColossyanJobStatus | Unset): The current status of the video generation job.
        video_id (str | Unset): The ID of the provisioned generated video
        progress (float | Unset): The current progress of the video generation job.
        maximum_progress (float | Unset): The maximum progress value of the video generation job.
    """

    status: ColossyanJobStatus | Unset = UNSET
    video_id: str | Unset = UNSET
    progress: float | Unset = UNSET
    maximum_progress: float | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        status: str | Unset = UNSET
        if not isinstance(self.status, Unset):
            status = self.status.value

        video_id = self.video_id

        progress = self.progress

        maximum_progress = self.maximum_progress

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if status is not UNSET:
            field_dict["status"] = status
        if video_id is not UNSET:
            field_dict["videoId"] = video_id
        if progress is not UNSET:
            field_dict["progress"] = progress
        if maximum_progress is not UNSET:
            field_dict["maximumProgress"] = maximum_progress

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        _status = d.pop("status", UNSET)
        status: ColossyanJobStatus | Unset
        if isinstance(_status, Unset):
            status = UNSET
        else:
            status = ColossyanJobStatus(_status)

        video_id = d.pop("videoId", UNSET)

        progress = d.pop("progress", UNSET)

        maximum_progress = d.pop("maximumProgress", UNSET)

        colossyan_job = cls(
            status=status,
            video_id=video_id,
            progress=progress,
            maximum_progress=maximum_progress,
        )

        colossyan_job.additional_properties = d
        return colossyan_job

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
