from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.ezmodel_video_status import EzmodelVideoStatus
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.ezmodel_error import EzmodelError
    from ..models.ezmodel_video_metadata import EzmodelVideoMetadata


T = TypeVar("T", bound="EzmodelVideo")


@_attrs_define
class EzmodelVideo:
    """
    Attributes:
        status (EzmodelVideoStatus): Task status. pending: submitted, waiting for processing; processing: being
            processed; completed: video generated successfully; failed: task failed.
        id (str | Unset): Video task ID
        object_ (str | Unset): Object type, always `video`
        model (str | Unset): Model name used
        progress (int | Unset): Progress percentage (0-100)
        created_at (int | Unset): Creation timestamp (Unix timestamp)
        seconds (str | Unset): Video duration
        completed_at (int | Unset): Completion timestamp (optional)
        expires_at (int | Unset): Expiration timestamp (optional); download the video before it
        size (str | Unset): Video dimensions in format `{width}x{height}`
        url (str | Unset): Video download URL (available after task completion)
        error (EzmodelError | Unset): Error information (available when task fails)
        metadata (EzmodelVideoMetadata | Unset): Additional metadata
    """

    status: EzmodelVideoStatus
    id: str | Unset = UNSET
    object_: str | Unset = UNSET
    model: str | Unset = UNSET
    progress: int | Unset = UNSET
    created_at: int | Unset = UNSET
    seconds: str | Unset = UNSET
    completed_at: int | Unset = UNSET
    expires_at: int | Unset = UNSET
    size: str | Unset = UNSET
    url: str | Unset = UNSET
    error: EzmodelError | Unset = UNSET
    metadata: EzmodelVideoMetadata | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        status = self.status.value

        id = self.id

        object_ = self.object_

        model = self.model

        progress = self.progress

        created_at = self.created_at

        seconds = self.seconds

        completed_at = self.completed_at

        expires_at = self.expires_at

        size = self.size

        url = self.url

        error: dict[str, Any] | Unset = UNSET
        if not isinstance(self.error, Unset):
            error = self.error.to_dict()

        metadata: dict[str, Any] | Unset = UNSET
        if not isinstance(self.metadata, Unset):
            metadata = self.metadata.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "status": status,
            }
        )
        if id is not UNSET:
            field_dict["id"] = id
        if object_ is not UNSET:
            field_dict["object"] = object_
        if model is not UNSET:
            field_dict["model"] = model
        if progress is not UNSET:
            field_dict["progress"] = progress
        if created_at is not UNSET:
            field_dict["created_at"] = created_at
        if seconds is not UNSET:
            field_dict["seconds"] = seconds
        if completed_at is not UNSET:
            field_dict["completed_at"] = completed_at
        if expires_at is not UNSET:
            field_dict["expires_at"] = expires_at
        if size is not UNSET:
            field_dict["size"] = size
        if url is not UNSET:
            field_dict["url"] = url
        if error is not UNSET:
            field_dict["error"] = error
        if metadata is not UNSET:
            field_dict["metadata"] = metadata

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.ezmodel_error import EzmodelError
        from ..models.ezmodel_video_metadata import EzmodelVideoMetadata

        d = dict(src_dict)
        status = EzmodelVideoStatus(d.pop("status"))

        id = d.pop("id", UNSET)

        object_ = d.pop("object", UNSET)

        model = d.pop("model", UNSET)

        progress = d.pop("progress", UNSET)

        created_at = d.pop("created_at", UNSET)

        seconds = d.pop("seconds", UNSET)

        completed_at = d.pop("completed_at", UNSET)

        expires_at = d.pop("expires_at", UNSET)

        size = d.pop("size", UNSET)

        url = d.pop("url", UNSET)

        _error = d.pop("error", UNSET)
        error: EzmodelError | Unset
        if isinstance(_error, Unset):
            error = UNSET
        else:
            error = EzmodelError.from_dict(_error)

        _metadata = d.pop("metadata", UNSET)
        metadata: EzmodelVideoMetadata | Unset
        if isinstance(_metadata, Unset):
            metadata = UNSET
        else:
            metadata = EzmodelVideoMetadata.from_dict(_metadata)

        ezmodel_video = cls(
            status=status,
            id=id,
            object_=object_,
            model=model,
            progress=progress,
            created_at=created_at,
            seconds=seconds,
            completed_at=completed_at,
            expires_at=expires_at,
            size=size,
            url=url,
            error=error,
            metadata=metadata,
        )

        ezmodel_video.additional_properties = d
        return ezmodel_video

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
