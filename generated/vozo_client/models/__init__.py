"""Contains all the data models used in inputs/outputs"""

from .vozo_error import VozoError
from .vozo_job_state import VozoJobState
from .vozo_job_status import VozoJobStatus

__all__ = (
    "VozoError",
    "VozoJobState",
    "VozoJobStatus",
)
