"""The Markdown page of ``conv3d kernels check --device ... --report DIR``: every row, and a
reason on every row that did not run."""
from __future__ import annotations

from pathlib import Path


def _f(value, spec):
    return "" if value is None else format(value, spec)


def _skipped(value) -> str | None:
    return value if isinstance(value, str) else None


def _gpu_tests(section) -> list[str]:
    lines = ["## 1. GPU tests", "", f"**{section['status']}**", ""]
    if "command" in section:
        lines += [f"`{section['command']}` ({section.get('seconds', '?')} s, files: "
                  f"{', '.join(section.get('files', []))})", ""]
    if section.get("tail"):
        lines += ["```", section["tail"], "```", ""]
    return lines


def _comparisons(rows) -> list[str]:
    passed = sum(r["status"] == "pass" for r in rows)
    failed = sum(r["status"].startswith("FAIL") for r in rows)
    lines = ["## 2. Kernels vs the float64 NumPy reference", "",
             f"{passed} rows pass, {failed} fail, {len(rows) - passed - failed} other. Error: "
             "max |result - reference| / max(1, max |reference|); the reference is "
             "`conv3d.ops.cpu_reference` in float64 on the same (rounded) inputs.", "",
             "| section | case | algorithm | dtype | output | max error | tolerance | result |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['section']} | {r['case']} | {r['algorithm']} | {r['dtype']} | "
                     f"{r['op']} | {_f(r['error'], '.2e')} | {_f(r['tolerance'], 'g')} | "
                     f"{r['status']} |")
    return lines + [""]


def _timings(section) -> list[str]:
    from ..bench.gpu import PEER_NOTE, markdown_table  # noqa: PLC0415
    lines = ["## 3. Timings against cuDNN", ""]
    if _skipped(section):
        return lines + [f"**{section}**", ""]
    return lines + [markdown_table(section, PEER_NOTE)]


def _resources(rows, cupy_rows) -> list[str]:
    lines = ["## 4. Registers, spills and occupancy", "",
             "From ptxas' `-v` report of each entry point, compiled for each architecture "
             "(CUBIN; no GPU needed). Occupancy is theoretical (`conv3d.cuda.resources`: "
             "per-SM limits table and NVIDIA's occupancy-calculator rules) for the largest "
             "block the comparisons of section 2 launched, with its dynamic shared memory.", "",
             "| kernel | entry | arch | registers | spill stores B | spill loads B | stack B | "
             "static smem B | threads | dyn. smem B | blocks/SM | occupancy | limited by | "
             "status |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        occ = _f(r.get("occupancy"), ".0%") or r.get("occupancy_note", "")
        lines.append(
            f"| {r['kernel']} | {r['entry']} | {r['arch']} | {_f(r.get('registers'), 'd')} | "
            f"{_f(r.get('spill_stores'), 'd')} | {_f(r.get('spill_loads'), 'd')} | "
            f"{_f(r.get('stack'), 'd')} | {_f(r.get('static_shared'), 'd')} | "
            f"{_f(r.get('threads'), 'd')} | {_f(r.get('dynamic_shared'), 'd')} | "
            f"{_f(r.get('blocks_per_sm'), 'd')} | {occ} | {r.get('limiter', '')} | "
            f"{r['status']} |")
    lines += ["", "### On the GPU: CuPy's RawKernel attributes and the driver's occupancy", ""]
    if _skipped(cupy_rows):
        return lines + [f"**{cupy_rows}**", ""]
    lines += ["'table' is `conv3d.cuda.resources.occupancy` for the GPU's architecture with "
              "CuPy's register and shared-memory counts: where it differs from the driver's, "
              "the per-SM table or its rules are wrong for this GPU.", "",
              "| kernel | entry | registers | local B | static smem B | max threads | threads | "
              "dyn. smem B | blocks/SM (driver) | occupancy (driver) | blocks/SM (table) | "
              "status |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in cupy_rows:
        lines.append(f"| {r['kernel']} | {r['entry']} | {_f(r.get('registers'), 'd')} | "
                     f"{_f(r.get('local_bytes'), 'd')} | {_f(r.get('static_shared'), 'd')} | "
                     f"{_f(r.get('max_threads'), 'd')} | {r['threads']} | "
                     f"{r['dynamic_shared']} | {_f(r.get('blocks_per_sm'), 'd')} | "
                     f"{_f(r.get('occupancy'), '.0%')} | {r.get('table_blocks', '')} | "
                     f"{r['status']} |")
    return lines + [""]


def write_report(report, out: Path) -> Path:
    info, sections = report["info"], report["sections"]
    emulation = info["device"] == "cuda-emu"
    title = ("conv3d device check: EMULATION (--device cuda-emu), no GPU numbers" if emulation
             else "conv3d device check on an NVIDIA GPU")
    lines = [f"# {title}", "", f"`{report['command']}`", ""]
    if emulation:
        lines += ["> This report was made without a GPU: the kernels ran in conv3d's CPU "
                  "emulator (`cuda-emu`), the resource rows come from the compiler, and every "
                  "row that needs a GPU (GPU tests, timings, CuPy attributes) is skipped with "
                  "its reason. Nothing here is a GPU measurement.", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()] + [""]
    lines += _gpu_tests(sections["gpu_tests"])
    lines += _comparisons(sections["comparisons"])
    lines += _timings(sections["timings"])
    lines += _resources(sections["resources"], sections["cupy_attributes"])
    path = out / "device-check.md"
    path.write_text("\n".join(lines))
    return path
