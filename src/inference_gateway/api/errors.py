"""Validation errors that name the file, the object, the field and the reason."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FieldError:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ManifestError(ValueError):
    """One object failed validation; carries every field error found in it."""

    def __init__(self, source: str, obj: str, errors: list[FieldError]) -> None:
        self.source = source
        self.obj = obj
        self.errors = errors
        lines = "; ".join(str(e) for e in errors)
        super().__init__(f"{source}: {obj}: {lines}")
