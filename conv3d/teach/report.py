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
def terminal_width(file=None, width: int | None = None) -> int | None:
    """The width to print at: ``width`` when given (``--width`` for a projector), else ``None``
    in a terminal (rich measures it, and honours ``COLUMNS``), else ``COLUMNS`` or 80.

    Output that is not a terminal (a pipe, a file, a test) gets 80 columns rather than the width
    of whatever terminal happens to be attached to stderr: the same command prints the same text.
    """
    import os  # noqa: PLC0415
    if width is not None:
        if width < 20:
            raise ValueError(f"--width must be at least 20 columns, got {width}")
        return width
    out = file if file is not None else sys.stdout
    if hasattr(out, "isatty") and out.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) >= 20 else 80


def make_console(file=None, width: int | None = None):
    """A rich Console that prints at ``terminal_width(file, width)`` columns."""
    from rich.console import Console  # noqa: PLC0415

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            # rich's default exits with status 1; a closed pipe (`| head`) is the caller's to
            # handle (the conv3d command exits 0), so it stays an ordinary BrokenPipeError
            self.quiet = True
            raise BrokenPipeError

    out = file if file is not None else sys.stdout
    return _Console(file=out, width=terminal_width(out, width), highlight=False, soft_wrap=False)


def render_rich(report: Report, console) -> None:
    from rich.markup import escape  # noqa: PLC0415
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
            _print_table(block[1], console)


# A column may wrap down to this many characters; a table that cannot give every column at least
# that (or its full width, if smaller) is printed as one record per row instead, so that a formula
# is never squeezed into a column a few letters wide.
MIN_WRAPPED_COLUMN = 16


def _print_table(t: Table, console) -> None:
    from rich import box  # noqa: PLC0415
    from rich.markup import escape  # noqa: PLC0415
    from rich.table import Table as RichTable  # noqa: PLC0415

    def cell(i, j, v):
        return f"[reverse]{escape(v)}[/reverse]" if (i, j) in t.highlight else escape(v)

    natural = [max([len(c)] + [len(r[j]) for r in t.rows if j < len(r)])
               for j, c in enumerate(t.columns)]
    squeezed = sum(min(n, MIN_WRAPPED_COLUMN) + 2 for n in natural) + 2  # 1 space each side
    caption = escape(t.caption) if t.caption else None
    if squeezed <= console.width:
        # a table wider than the console wraps its cells (at spaces, or folds a long word)
        # instead of running past the edge; a number is never cut off behind an ellipsis
        rt = RichTable(title=escape(t.title), box=box.SIMPLE_HEAVY, caption=caption)
        for j, c in enumerate(t.columns):
            # numbers line up on the right; text long enough to wrap reads from the left
            left = (j == 0 and t.row_header) or natural[j] > MIN_WRAPPED_COLUMN
            rt.add_column(escape(c), justify="left" if left else "right",
                          style="bold" if (j == 0 and t.row_header) else None, overflow="fold")
        for i, r in enumerate(t.rows):
            rt.add_row(*(cell(i, j, v) for j, v in enumerate(r)))
    else:
        # one record per row: "column  value" lines, the value wrapping in the rest of the width
        rt = RichTable(title=escape(t.title), box=box.SIMPLE_HEAVY, caption=caption,
                       show_header=False)
        rt.add_column(style="bold", no_wrap=True)
        rt.add_column(overflow="fold")
        for i, r in enumerate(t.rows):
            for j, v in enumerate(r):
                rt.add_row(escape(t.columns[j]), cell(i, j, v), end_section=j == len(r) - 1)
    console.print(rt)


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
    # \caption* (a table title without a number) comes from the caption package
    out = ["% generated by `conv3d explain --latex`; needs \\usepackage{booktabs} and "
           "\\usepackage{caption}"]
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


def render(report: Report, fmt: str = "rich", file=None, width: int | None = None) -> None:
    """Write ``report`` to ``file`` (default stdout) in one of ``FORMATS``; ``width``: the
    terminal columns (``terminal_width``; Markdown and LaTeX ignore it)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    out = file if file is not None else sys.stdout
    if fmt == "rich":
        render_rich(report, make_console(out, width))
    elif fmt == "markdown":
        out.write(render_markdown(report))
    else:
        out.write(render_latex(report))


def render_to_string(report: Report, fmt: str = "rich", width: int | None = None) -> str:
    buf = io.StringIO()
    render(report, fmt, buf, width)
    return buf.getvalue()
