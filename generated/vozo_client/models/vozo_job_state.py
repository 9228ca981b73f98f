from enum import StrEnum


class VozoJobState(StrEnum):
    """VozoJobState: the values the vendor's spec documents.

    A value the spec does not list parses too, as a pseudo-member named ``UNDOCUMENTED``
    whose ``value`` is the vendor's raw string (vendors add states without notice);
    ``is_documented`` tells the two apart and ``to_dict()`` sends the raw string back.
    """

    DONE = "done"
    FAILED = "failed"
    PENDING = "pending"
    PROCESSING = "processing"

    def __str__(self) -> str:
        return str(self.value)

    @property
    def is_documented(self) -> bool:
        """False for a value the spec did not list."""
        return self._value_ in type(self)._value2member_map_

    @classmethod
    def _missing_(cls, value: object) -> "VozoJobState | None":
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = "UNDOCUMENTED"
        member._value_ = value
        return member
