"""A tiny document model so that every teaching view prints to the terminal, Markdown or LaTeX.

A view builds a ``Report`` (headings, paragraphs, tables, code) once; ``render`` writes it as
rich tables in a terminal, as a Markdown handout (``--markdown``) or as a LaTeX handout
(``--latex``). Text is escaped for each target: rich reads ``[...]`` as markup, so every string
goes through ``rich.markup.escape`` first (otherwise ``x[0, 0, 1]`` would silently vanish).
"""
from __future__ import annotations

import io
import sys
from dataclasses import dataclass, field

FORMATS = ("rich", "markdown", "latex")


@dataclass
class Table:
    title: str
    columns: list
    rows: list
    row_header: bool = True  # the first column labels the row
    highlight: set = field(default_factory=set)  # (row, col) cells to emphasise
    caption: str = ""


@dataclass
class Report:
    blocks: list = field(default_factory=list)

    def heading(self, text: str, level: int = 1) -> Report:
        self.blocks.append(("heading", text, level))
        return self

    def text(self, text: str, style: str = "") -> Report:
        self.blocks.append(("text", text, style))
        return self

    def table(self, title, columns, rows, **kw) -> Table:
        t = Table(title, [str(c) for c in columns], [[str(c) for c in r] for r in rows], **kw)
        self.blocks.append(("table", t))
        return t

    def code(self, text: str) -> Report:
        self.blocks.append(("code", text))
        return self

    def extend(self, other: Report) -> Report:
        self.blocks.extend(other.blocks)
        return self


# ---- rich (terminal) -------------------------------------------------------------------------
def make_console(file=None):
    """A rich Console; wide enough not to fold tables when the output is not a terminal."""
    from rich.console import Console  # noqa: PLC0415
    out = file if file is not None else sys.stdout
    is_tty = hasattr(out, "isatty") and out.isatty()
    width = None if is_tty else 200
    return Console(file=out, width=width, highlight=False, soft_wrap=False)


def render_rich(report: Report, console) -> None:
    from rich import box  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table as RichTable  # noqa: PLC0415
    for block in report.blocks:
        kind = block[0]
        if kind == "heading":
            _, text, level = block
            if level == 1:
                console.rule(f"[bold]{escape(text)}[/bold]")
            else:
                console.print(f"[bold underline]{escape(text)}[/bold underline]")
        elif kind == "text":
            _, text, style = block
            console.print(f"[{style}]{escape(text)}[/{style}]" if style else escape(text))
        elif kind == "code":
            console.print(f"[cyan]{escape(block[1])}[/cyan]")
        else:
            t: Table = block[1]
            rt = RichTable(title=escape(t.title), box=box.SIMPLE_HEAVY, show_lines=False,
                           caption=escape(t.caption) if t.caption else None,
                           min_width=len(t.title) + 4)
            for j, c in enumerate(t.columns):
                rt.add_column(escape(c), justify="left" if (j == 0 and t.row_header) else "right",
                              style="bold" if (j == 0 and t.row_header) else None, no_wrap=True)
            for i, r in enumerate(t.rows):
                cells = [f"[reverse]{escape(v)}[/reverse]" if (i, j) in t.highlight else escape(v)
                         for j, v in enumerate(r)]
                rt.add_row(*cells)
            # never hide a number behind an ellipsis: give the table the width it needs
            needed = sum(max([len(c)] + [len(r[j]) for r in t.rows if j < len(r)]) + 3
                         for j, c in enumerate(t.columns)) + 4
            old = console.width
            console.width = max(old, needed)
            console.print(rt)
            console.width = old


# ---- Markdown --------------------------------------------------------------------------------
def _md_text(text: str) -> str:
    return text.replace("*", "\\*").replace("_", "\\_")


def _md_cell(text: str) -> str:
    return _md_text(text).replace("|", "\\|")


def render_markdown(report: Report) -> str:
    out = []
    for block in report.blocks:
        kind = block[0]
        if kind == "heading":
            out.append("#" * (block[2] + 1) + " " + _md_text(block[1]) + "\n")
        elif kind == "text":
            out.append(_md_text(block[1]) + "\n")
        elif kind == "code":
            out.append("```python\n" + block[1] + "\n```\n")
        else:
            t: Table = block[1]
            out.append(f"**{_md_cell(t.title)}**\n")
            out.append("| " + " | ".join(_md_cell(c) for c in t.columns) + " |")
            out.append("|" + "|".join("---" if j == 0 else "---:" for j in range(len(t.columns)))
                       + "|")
            for i, r in enumerate(t.rows):
                cells = [f"**{_md_cell(v)}**" if (i, j) in t.highlight else _md_cell(v)
                         for j, v in enumerate(r)]
                out.append("| " + " | ".join(cells) + " |")
            if t.caption:
                out.append("\n" + t.caption)
            out.append("")
    return "\n".join(out)


# ---- LaTeX -----------------------------------------------------------------------------------
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
          "×": r"$\times$", "·": r"$\cdot$", "→": r"$\rightarrow$", "∂": r"$\partial$",
          "Σ": r"$\Sigma$", "τ": r"$\tau$", "²": r"$^2$", "≠": r"$\neq$", "≤": r"$\leq$", "≥": r"$\geq$", "−": "-"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def render_latex(report: Report) -> str:
    out = ["% generated by `conv3d explain --latex`; needs \\usepackage{booktabs}"]
    for block in report.blocks:
        kind = block[0]
        if kind == "heading":
            cmd = {1: "section*", 2: "subsection*"}.get(block[2], "paragraph*")
            out.append(f"\\{cmd}{{{latex_escape(block[1])}}}")
        elif kind == "text":
            out.append(latex_escape(block[1]) + "\n")
        elif kind == "code":
            out.append("\\begin{verbatim}\n" + block[1] + "\n\\end{verbatim}")
        else:
            t: Table = block[1]
            spec = "l" + "r" * (len(t.columns) - 1)
            out.append("\\begin{table}[h]\\centering")
            out.append(f"\\caption*{{{latex_escape(t.title)}}}")
            out.append(f"\\begin{{tabular}}{{{spec}}}\n\\toprule")
            out.append(" & ".join(latex_escape(c) for c in t.columns) + r" \\ \midrule")
            for i, r in enumerate(t.rows):
                cells = [f"\\textbf{{{latex_escape(v)}}}" if (i, j) in t.highlight
                         else latex_escape(v) for j, v in enumerate(r)]
                out.append(" & ".join(cells) + r" \\")
            out.append("\\bottomrule\n\\end{tabular}")
            if t.caption:
                out.append(latex_escape(t.caption))
            out.append("\\end{table}")
    return "\n".join(out) + "\n"


def render(report: Report, fmt: str = "rich", file=None) -> None:
    """Write ``report`` to ``file`` (default stdout) in one of ``FORMATS``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    out = file if file is not None else sys.stdout
    if fmt == "rich":
        render_rich(report, make_console(out))
    elif fmt == "markdown":
        out.write(render_markdown(report))
    else:
        out.write(render_latex(report))


def render_to_string(report: Report, fmt: str = "rich") -> str:
    buf = io.StringIO()
    render(report, fmt, buf)
    return buf.getvalue()
