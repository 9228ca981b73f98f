"""Contains all the data models used in inputs/outputs"""

from .ezmodel_error import EzmodelError
from .ezmodel_error_response import EzmodelErrorResponse
from .ezmodel_video import EzmodelVideo
from .ezmodel_video_metadata import EzmodelVideoMetadata
from .ezmodel_video_status import EzmodelVideoStatus

__all__ = (
    "EzmodelError",
    "EzmodelErrorResponse",
    "EzmodelVideo",
    "EzmodelVideoMetadata",
    "EzmodelVideoStatus",
)
