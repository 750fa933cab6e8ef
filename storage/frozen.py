"""The one way a stored row becomes a frozen record: `frozen(Record, source, **given)`.

Every repository hands out frozen dataclasses, never live ORM rows (`ScheduleRow`, `SlotRow`, `Operation`,
`RequestRow`), and a use case turns such a row into its own view the same way. Rules kept here:
- A field is read from the source's attribute of the same name; `given` supplies (or overrides) the rest. A field
  the source lacks takes its default; one with no default is an error, never a silent blank.
- Values are normalised by the field's declared type, so a column that predates its default (NULL in old rows)
  reads as the type says: `str` → "" for NULL, `int` → 0 for NULL, `bool` → a real bool, a `StrEnum` → its member
  (a NULL as the member for ""). Optional and other types are copied as they are.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import typing
from typing import Any, TypeVar

Record = TypeVar("Record")

_MISSING = object()


@functools.cache
def _fields_of(record: Any) -> tuple[tuple[str, Any, bool], ...]:
    """(name, declared type, has a default) for each field of a dataclass, in order."""
    hints = typing.get_type_hints(record)
    return tuple(
        (
            field.name,
            hints[field.name],
            field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING,
        )
        for field in dataclasses.fields(record)
    )


def _as(declared: Any, value: Any) -> Any:
    if not isinstance(declared, type):  # `X | None`, a Literal, a tuple[...]: as stored
        return value
    if issubclass(declared, enum.Enum):
        return declared("" if value is None else value)
    if declared is bool:
        return bool(value)
    if declared is str:
        return "" if value is None else value
    if declared is int:
        return 0 if value is None else int(value)
    return value


def frozen(record: type[Record], source: object, **given: Any) -> Record:
    """A `record` (a frozen dataclass) filled from `source`'s attributes of the same names, then `given`."""
    values: dict[str, Any] = {}
    shape: Any = record  # a class is hashable: its fields are worked out once
    for name, declared, has_default in _fields_of(shape):
        value = given[name] if name in given else getattr(source, name, _MISSING)
        if value is _MISSING:
            if has_default:
                continue
            raise AttributeError(f"{type(source).__name__} has no {name!r} for {record.__name__}")
        values[name] = _as(declared, value)
    return record(**values)
