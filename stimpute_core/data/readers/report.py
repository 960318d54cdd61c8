"""What a multi-file load read and what it skipped, and the error a bad file raises."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


class ReaderError(ValueError):
    """A file cannot be read as the expected format. The message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class LoadReport:
    """Files read and files skipped (with the reason) during a load of many files.

    One bad file in a folder of many is skipped and listed here; it never aborts the load.
    """

    read: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add_read(self, path: str | os.PathLike) -> None:
        self.read.append(str(path))

    def add_skipped(self, path: str | os.PathLike, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def summary(self) -> str:
        """Human-readable summary: counts, then one line per skipped file, row or station."""
        lines = [f"read {len(self.read)} file(s); {len(self.skipped)} skipped (listed below)"]
        if not self.skipped:
            lines = [f"read {len(self.read)} file(s), skipped none"]
        lines += [f"  skipped {os.path.basename(p)}: {why}" for p, why in self.skipped]
        return "\n".join(lines)
