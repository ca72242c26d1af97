"""A table as plain rows, so that one builder serves both the terminal (rich, in the CLI) and
the Markdown pages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    left: tuple[int, ...] = (0,)  # the columns of words; the others hold numbers, right-aligned

    def markdown(self) -> str:
        """The rows as a Markdown table (without title or caption)."""
        rule = "|" + "|".join("---" if i in self.left else "---:" for i in range(len(self.columns))) + "|"
        lines = ["| " + " | ".join(self.columns) + " |", rule]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)
