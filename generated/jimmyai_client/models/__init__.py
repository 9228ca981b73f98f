"""Contains all the data models used in inputs/outputs"""

from .jimmy_video_response import JimmyVideoResponse
from .jimmy_video_result import JimmyVideoResult
from .jimmy_video_status import JimmyVideoStatus
from .jimmy_video_task import JimmyVideoTask

__all__ = (
    "JimmyVideoResponse",
    "JimmyVideoResult",
    "JimmyVideoStatus",
    "JimmyVideoTask",
)
