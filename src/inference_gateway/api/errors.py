"""Validation errors that name the file, the object, the field and the reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass(frozen=True)
class ObjectProblem:
    """Every field error found in one object, and where the object came from."""

    source: str
    obj: str
    errors: tuple[FieldError, ...]

    def lines(self) -> list[str]:
        return [f"{self.source}: {self.obj}: {e}" for e in self.errors] or [f"{self.source}: {self.obj}"]


class ManifestError(ValueError):
    """One or more objects failed validation.

    `str()` gives one line per field error: "<file>: line <n>: <Kind> <ns>/<name>: <field>: <why>".
    `source`, `obj` and `errors` describe the first problem; `problems` holds them all.
    """

    def __init__(
        self,
        source: str,
        obj: str,
        errors: Sequence[FieldError],
        more: Sequence[ObjectProblem] = (),
    ) -> None:
        self.problems = [ObjectProblem(source, obj, tuple(errors)), *more]
        self.source = source
        self.obj = obj
        self.errors = list(errors)
        super().__init__("\n".join(line for p in self.problems for line in p.lines()))

    @classmethod
    def combine(cls, errors: Sequence[ManifestError]) -> ManifestError:
        problems = [p for e in errors for p in e.problems]
        first = problems[0]
        return cls(first.source, first.obj, first.errors, problems[1:])
