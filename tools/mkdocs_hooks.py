"""mkdocs hooks: parts of the documentation generated from the code's own definitions, so they
cannot drift from it. `<!-- settings -->` in a page becomes the table of every environment
setting (`worker.settings.SPECS`: variable, default, accepted values, meaning)."""

from __future__ import annotations

from typing import Any

from worker.settings import SPECS, Spec

MARKER = "<!-- settings -->"


def settings_table() -> str:
    """Every setting as a Markdown table row, in declaration order."""
    rows = ["| variable | default | accepted | meaning |", "|---|---|---|---|"]
    for spec in SPECS:
        rows.append(
            f"| `{spec.env}` | {_default(spec)} | {spec.accepted()} | "
            f"{_cell(spec.doc)}{' Secret: never shown.' if spec.secret else ''} |"
        )
    return "\n".join(rows)


def _default(spec: Spec) -> str:
    if spec.default is None:
        return "unset"
    if spec.kind == "bool":
        return "`1`" if spec.default else "`0`"
    return f"`{spec.default}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def on_page_markdown(markdown: str, **_: Any) -> str:
    return markdown.replace(MARKER, settings_table()) if MARKER in markdown else markdown
