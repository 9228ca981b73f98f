"""Contains all the data models used in inputs/outputs"""

from .duomi_task import DuomiTask
from .duomi_task_action import DuomiTaskAction
from .duomi_task_data import DuomiTaskData
from .duomi_task_state import DuomiTaskState
from .duomi_video import DuomiVideo

__all__ = (
    "DuomiTask",
    "DuomiTaskAction",
    "DuomiTaskData",
    "DuomiTaskState",
    "DuomiVideo",
)
