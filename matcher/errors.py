"""Domain exceptions carrying what a person needs to fix the input."""

from __future__ import annotations

from dataclasses import dataclass

from matcher.i18n import _


@dataclass(frozen=True)
class DataIssue:
    """One problem in one cell of an input file.

    ``row`` is the 1-based data row as a spreadsheet user counts it (the header is row 1, so the
    first data row is row 2), or ``None`` for a problem with the whole file.

    ``message`` is English (what ``str()`` and the API show); ``template`` and ``args`` are the
    message before formatting, so :meth:`localised` can translate it first and format after.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    message: str
    template: str = ""
    args: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, file: str, row: int | None, column: str | None, value: str | None,
           template: str, /, **args: object) -> DataIssue:
        """An issue whose message is ``template`` (marked with ``N_``) formatted with ``args``."""
        return cls(file, row, column, value, template.format(**args) if args else template,
                   template, tuple(args.items()))

    def localised(self) -> str:
        """The issue in the current language (:mod:`matcher.i18n`); English is ``str()``."""
        template = self.template or self.message
        message = _(template).format(**dict(self.args)) if self.args else _(template)
        where = self.file
        if self.row is not None:
            where = _("{file} row {row}").format(file=where, row=self.row)
        if self.column:
            where = _("{where}, {column}").format(where=where, column=self.column)
        if self.value is not None:
            return _("{where}: {value} {message}").format(where=where, value=repr(self.value),
                                                          message=message)
        return _("{where}: {message}").format(where=where, message=message)

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.column:
            where += f", {self.column}"
        if self.value is not None:
            return f"{where}: {self.value!r} {self.message}"
        return f"{where}: {self.message}"


class Invalid(ValueError):  # noqa: N818 - reads as "raise Invalid(...)" in the domain
    """A value a domain type refuses, its message kept before formatting so an importer can
    translate it first (:meth:`DataIssue.of`); ``str()`` is the English message."""

    def __init__(self, template: str, /, **args: object) -> None:
        super().__init__(template.format(**args) if args else template)
        self.template, self.params = template, args


class InputError(ValueError):
    """The input cannot be imported; ``issues`` lists every problem found, not only the first."""

    def __init__(self, issues: list[DataIssue]) -> None:
        self.issues = issues
        shown = "\n".join(f"  - {i}" for i in issues[:50])
        more = f"\n  ... and {len(issues) - 50} more" if len(issues) > 50 else ""
        super().__init__(f"{len(issues)} problem(s) in the input:\n{shown}{more}")

    def localised(self) -> str:
        """Every issue (the first 50) in the current language."""
        shown = "\n".join(f"  - {i.localised()}" for i in self.issues[:50])
        more = ("\n  " + _("... and {n} more").format(n=len(self.issues) - 50)
                if len(self.issues) > 50 else "")
        return _("{n} problem(s) in the input:").format(n=len(self.issues)) + "\n" + shown + more


class NetworkError(ValueError):
    """A street network file cannot be read or has no walkable streets."""
