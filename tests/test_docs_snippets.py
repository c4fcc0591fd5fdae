"""Run the code in the documentation and compare what it prints with what the page says.

Convention (docs/**/*.md): a fenced ```python block is executed; when the next fenced block
(only blank lines between) is a ```text block, that block is the expected output, compared as
doctest does (``...`` matches anything, whitespace is normalized). All the python blocks of one
page share one namespace, in page order, like the cells of a notebook. A block right after the
HTML comment ``<!-- snippet: skip REASON -->`` is shown but not run (GPU-only code, long runs);
the reason is required.

Every concept page must have at least one checked snippet (python followed by text).
"""
from __future__ import annotations

import contextlib
import doctest
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = re.compile(r"<!--\s*snippet:\s*skip\s+(\S.*?)\s*-->")


def parse_blocks(text: str):
    """[(language, code, line_number, skip_reason)] for every fenced block of a markdown page."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        before = "\n".join(lines[max(0, start - 3):start])
        skip = SKIP.search(before)
        blocks.append((m.group(1), "\n".join(body) + "\n", start + 1,
                       skip.group(1) if skip else None, start))
        i += 1
    return blocks


def snippets(text: str):
    """[(code, expected_output_or_None, line, skip_reason)] for the python blocks of a page."""
    blocks, lines = parse_blocks(text), text.splitlines()
    out = []
    for j, (lang, code, line, skip, start) in enumerate(blocks):
        if lang != "python":
            continue
        expected = None
        if j + 1 < len(blocks) and blocks[j + 1][0] == "text":
            end_of_code = start + code.count("\n") + 1
            between = lines[end_of_code + 1:blocks[j + 1][4]]
            if all(not s.strip() for s in between):
                expected = blocks[j + 1][1]
        out.append((code, expected, line, skip))
    return out


#: packages a page may need that conv3d does not require; without them the page is skipped
OPTIONAL = {"torch", "onnx", "onnxruntime", "cupy", "h5py", "sklearn", "scipy", "matplotlib", "av"}
#: folders whose pages are not run: docs/benchmarks/ holds the output of `conv3d bench` and notes
#: whose code blocks are fragments of a session (they use x and w defined elsewhere)
NOT_RUN = {"benchmarks"}
PAGES = sorted(p for p in DOCS.rglob("*.md") if "```python" in p.read_text()
               and p.relative_to(DOCS).parts[0] not in NOT_RUN)
CHECKER = doctest.OutputChecker()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


#: pages whose snippets take over 10 s (they build whole networks): run in CI's slow step
SLOW_PAGES = {"models/c3d-p3d-i3d.md"}


@pytest.mark.parametrize("page", [
    pytest.param(p, marks=pytest.mark.slow) if str(p.relative_to(DOCS)) in SLOW_PAGES else p
    for p in PAGES], ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_snippets_print_what_the_page_says(page, tmp_path, monkeypatch):
    import matplotlib
    import numpy as np
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # snippets that write files write them here
    namespace = {"__name__": "__docs__"}
    saved = np.get_printoptions()
    try:
        for code, expected, line, skip in snippets(page.read_text()):
            if skip:
                continue
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(buffer):
                    exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
            except ImportError as exc:  # ModuleNotFoundError, or a library's own ImportError
                if exc.name and exc.name.split(".")[0] in OPTIONAL:
                    pytest.skip(f"{page.relative_to(DOCS)} line {line} needs the optional "
                                f"package {exc.name}, which is not installed")
                raise
            except Exception as exc:  # NVRTC missing: the compile-check snippets cannot run
                if type(exc).__name__ == "NVRTCNotFoundError":
                    pytest.skip(f"{page.relative_to(DOCS)} line {line} needs NVRTC: {exc}")
                raise
            if expected is not None:
                got = buffer.getvalue()
                if not CHECKER.check_output(expected, got, FLAGS):
                    diff = CHECKER.output_difference(doctest.Example(code, expected), got, FLAGS)
                    pytest.fail(f"{page.relative_to(DOCS)} line {line}: the snippet's output "
                                f"differs from the page\n{diff}")
    finally:
        np.set_printoptions(**saved)


CONCEPTS = sorted((DOCS / "concepts").glob("*.md"))


@pytest.mark.parametrize("page", CONCEPTS, ids=[p.name for p in CONCEPTS])
def test_every_concept_page_has_a_checked_snippet_and_a_generated_figure(page):
    text = page.read_text()
    checked = [s for s in snippets(text) if s[1] is not None and s[3] is None]
    assert checked, f"{page.name} has no python snippet followed by its expected ```text output"
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert images, f"{page.name} shows no figure"
    # docs/figures/: docs/gen_concept_figures.py; docs/images/: the teaching tools' figure
    # command (docs/make_figures.py runs `conv3d visualize --all-figures`, conv3d/cli/visualize.py)
    scripts = [DOCS / "gen_concept_figures.py", DOCS / "make_figures.py",
               DOCS.parent / "conv3d" / "cli" / "visualize.py"]
    generators = "".join(p.read_text() for p in scripts if p.exists())
    for rel in images:
        png = (page.parent / rel).resolve()
        assert png.exists(), f"{page.name}: figure {rel} does not exist"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{rel} is not a PNG"
        assert png.name in generators or f'"{png.stem}"' in generators, \
            f"{png.name} is not written by a figure script in docs/"


def test_parser_pairs_code_with_output_and_honours_skip():
    page = ("```python\nprint(1)\n```\n\n```text\n1\n```\n"
            "<!-- snippet: skip needs a GPU -->\n```python\nimport cupy\n```\n"
            "```python\nx = 2\n```\nprose\n```text\nnot output\n```\n")
    got = snippets(page)
    assert [(c, e, s) for c, e, _, s in got] == [
        ("print(1)\n", "1\n", None), ("import cupy\n", None, "needs a GPU"),
        ("x = 2\n", None, None)]
