"""The ``--latex`` handouts: the packages their header names are the ones they use, and the
handouts compile with pdflatex (Debian's texlive-latex-base + texlive-latex-recommended) where it
is installed."""
import re
import shutil
import subprocess

import pytest

from conv3d.cli import main

HANDOUTS = [
    ["explain", "--example", "cube", "--at", "0,0,1"],
    ["explain", "--example", "cube", "--grad", "input", "--at", "1,1,1"],
    ["explain", "--example", "cube", "--im2col"],
    ["explain", "--input", "4x4x4", "--kernel", "2x2x2", "--pool", "max", "--at", "0,1,1"],
    ["explain", "--input", "4x6x6", "--kernel", "3x3x3", "--factorized", "--at", "0,1,1"],
    ["shapes", "keras-3d-mnist"],
]
# what each command the handouts use needs besides LaTeX itself
PACKAGE_OF = {r"\caption*": "caption", r"\toprule": "booktabs", r"\midrule": "booktabs",
              r"\bottomrule": "booktabs"}


def handout(capsys, argv) -> str:
    assert main([*argv, "--latex"]) in (0, 1)
    return capsys.readouterr().out


def needed_packages(header: str) -> set:
    return set(re.findall(r"\\usepackage\{(\w+)\}", header))


@pytest.mark.parametrize("argv", HANDOUTS, ids=lambda a: "-".join(a[:3]))
def test_header_names_every_package_the_handout_uses(capsys, argv):
    tex = handout(capsys, argv)
    header = tex.splitlines()[0]
    used = {pkg for cmd, pkg in PACKAGE_OF.items() if cmd in tex}
    assert used, "the handout has no table?"
    assert used <= needed_packages(header), header


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (Debian: apt-get install "
                           "texlive-latex-base texlive-latex-recommended)")
def test_handouts_compile_with_pdflatex(capsys, tmp_path):
    bodies = [handout(capsys, argv) for argv in HANDOUTS]
    packages = sorted(set().union(*(needed_packages(b.splitlines()[0]) for b in bodies)))
    doc = ("\\documentclass{article}\n"
           + "".join(f"\\usepackage{{{p}}}\n" for p in packages)
           + "\\begin{document}\n" + "\n\\clearpage\n".join(bodies) + "\\end{document}\n")
    (tmp_path / "handout.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           "handout.tex"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("!")]
    assert proc.returncode == 0, "\n".join(errors) or proc.stdout[-2000:]
    assert (tmp_path / "handout.pdf").stat().st_size > 1000
    # \caption* without the caption package still compiles, as "Table 1: *title": the titles
    # must come out unnumbered, so no table reaches the list of tables
    assert "numberline" not in (tmp_path / "handout.aux").read_text()
