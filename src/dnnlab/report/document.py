"""Reports as a list of blocks, rendered to Markdown (figures linked) and standalone HTML
(figures embedded as base64 PNG), so both files always say the same thing.

Every report (the exercise, the answers, MC Dropout) builds a `Document`; figures are saved
as PNG files beside it (`dnnlab.report.figures.save_figure`), so each one can be regenerated and
inspected alone.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnnlab.files import write_text_atomic

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; } figcaption { color: #555; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def _inline_html(text: str) -> str:
    """Escape, then the two inline marks reports use: **bold** and `code`."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)


def html_table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table, every cell escaped (with the reports' **bold** and `code` marks)."""
    head = "".join(f"<th>{_inline_html(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{_inline_html(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Document:
    """An ordered report. Add blocks, then `write(folder, stem)` for `stem.md` and `stem.html`."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("heading", (level, text)))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("paragraph", text))

    def bullets(self, items: list[str]) -> None:
        self.blocks.append(("bullets", list(items)))

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        self.blocks.append(("table", (list(header), [[str(cell) for cell in row] for row in rows])))

    def figure(self, path: str | Path, caption: str) -> None:
        """A PNG already saved (see `dnnlab.report.figures.save_figure`); linked from Markdown, embedded in HTML."""
        self.blocks.append(("figure", (Path(path), caption)))

    def figures(self, figures: dict[str, Path], captions: dict[str, str], heading: str = "Figures") -> None:
        """A section of the saved figures by name, each with its caption."""
        self.heading(heading)
        for name, path in figures.items():
            self.figure(path, captions[name])

    def to_markdown(self, folder: Path) -> str:
        lines = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                lines += ["#" * value[0] + " " + value[1], ""]
            elif kind == "paragraph":
                lines += [value, ""]
            elif kind == "bullets":
                lines += [f"- {item}" for item in value] + [""]
            elif kind == "table":
                header, rows = value
                lines.append("| " + " | ".join(header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(row) + " |" for row in rows]
                lines.append("")
            elif kind == "figure":
                path, caption = value
                lines += [f"![{caption}]({_relative(path, folder)})", "", f"*{caption}*", ""]
        return "\n".join(lines)

    def to_html(self) -> str:
        parts = [
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>",
            f"<style>{STYLE}</style></head><body><h1>{html.escape(self.title)}</h1>",
        ]
        for kind, value in self.blocks:
            if kind == "heading":
                parts.append(f"<h{value[0]}>{_inline_html(value[1])}</h{value[0]}>")
            elif kind == "paragraph":
                parts.append(f"<p>{_inline_html(value)}</p>")
            elif kind == "bullets":
                parts.append("<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in value) + "</ul>")
            elif kind == "table":
                parts.append(html_table(*value))
            elif kind == "figure":
                path, caption = value
                data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
                parts.append(
                    f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{_inline_html(caption)}</figcaption></figure>"
                )
        parts.append("</body></html>")
        return "\n".join(parts)

    def write(self, folder: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write `stem.md` and `stem.html` into `folder` atomically; return both paths."""
        folder = Path(folder)
        md_path, html_path = folder / f"{stem}.md", folder / f"{stem}.html"
        write_text_atomic(md_path, self.to_markdown(folder))
        write_text_atomic(html_path, self.to_html())
        return md_path, html_path


def _relative(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path)
