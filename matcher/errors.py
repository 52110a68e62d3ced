"""Domain exceptions carrying what a person needs to fix the input."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataIssue:
    """One problem in one cell of an input file.

    ``row`` is the 1-based data row as a spreadsheet user counts it (the header is row 1, so the
    first data row is row 2), or ``None`` for a problem with the whole file.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.column:
            where += f", {self.column}"
        if self.value is not None:
            return f"{where}: {self.value!r} {self.message}"
        return f"{where}: {self.message}"


class InputError(ValueError):
    """The input cannot be imported; ``issues`` lists every problem found, not only the first."""

    def __init__(self, issues: list[DataIssue]) -> None:
        self.issues = issues
        shown = "\n".join(f"  - {i}" for i in issues[:50])
        more = f"\n  ... and {len(issues) - 50} more" if len(issues) > 50 else ""
        super().__init__(f"{len(issues)} problem(s) in the input:\n{shown}{more}")


class NetworkError(ValueError):
    """A street network file cannot be read or has no walkable streets."""
