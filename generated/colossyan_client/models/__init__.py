"""Contains all the data models used in inputs/outputs"""

from .colossyan_job import ColossyanJob
from .colossyan_job_status import ColossyanJobStatus

__all__ = (
    "ColossyanJob",
    "ColossyanJobStatus",
)
