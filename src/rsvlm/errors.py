"""Errors that reach the user as one line: what went wrong, which thing, and how to fix it."""

from __future__ import annotations

from pathlib import Path


class RsvlmError(Exception):
    """Base class for every error rsvlm expects and explains; the CLI prints it without a traceback."""


class DataError(RsvlmError):
    """A data file or folder is missing, malformed or unsafe."""

    def __init__(self, path: str | Path, problem: str, fix: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        message = f"{self.path}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)


class ImageReadError(DataError):
    """An image file cannot be decoded (corrupt, truncated, unsupported or too large)."""


class AnnotationError(DataError):
    """An annotation file (JSON, XML, TXT) cannot be parsed or is inconsistent."""


class FormatError(RsvlmError):
    """A dataset format is unknown or cannot be detected for a path."""


class RsvlmWarning(UserWarning):
    """Something the user should know that does not stop the run; the CLI prints it as one line."""
