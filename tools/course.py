"""The course as a static HTML site (``make course``): every notebook executed, one HTML page each, an index.

Each notebook runs top to bottom in a fresh kernel (in the mode of ``FACECOURSE_MODE``) and its wall time is
measured. A k3d view cannot live in a static page as a widget (its state is in the kernel), so after each cell
that displays widgets the kernel writes a standalone k3d snapshot (HTML with k3d's JavaScript inlined: works
offline) of every k3d plot inside them, and the page embeds it in an iframe. ``index.html`` holds the chapter
map (each notebook's title and learning objectives) with the measured run times; ``times.json`` the times.

Usage: ``python tools/course.py [--out build/course] [notebooks/*.ipynb]``.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
WIDGET = "application/vnd.jupyter.widget-view+json"
# Run in the notebook's kernel after a cell that displayed widgets: snapshot every k3d plot inside them.
SNAPSHOT_CODE = """
def _facecourse_snapshots(model_ids, prefix):
    import json, pathlib, sys
    from ipywidgets.widgets.widget import _instances
    Plot = sys.modules["k3d.plot"].Plot  # the attribute k3d.plot is the function that makes one
    written, stack = [], [_instances.get(m) for m in model_ids]
    while stack:
        w = stack.pop(0)
        if isinstance(w, Plot):
            w.snapshot_type = "full"
            path = pathlib.Path(f"{prefix}_{len(written)}.html")
            path.write_text(w.get_snapshot(), encoding="utf-8")
            written.append(path.name)
        stack.extend(getattr(w, "children", ()))
    print(json.dumps(written))
"""


def _widget_ids(cell) -> list[str]:
    return [o["data"][WIDGET]["model_id"] for o in cell.get("outputs", [])
            if o.get("output_type") in ("display_data", "execute_result") and WIDGET in o.get("data", {})]


def _iframe(name: str) -> str:
    return (f'<iframe src="{html.escape(name)}" title="interactive 3D view (k3d snapshot: drag to turn)" '
            'style="width: 100%; height: 540px; border: 1px solid #ddd" loading="lazy"></iframe>')


def execute(nb, cwd: Path, out_dir: Path, stem: str) -> float:
    """Execute ``nb`` in place (cwd ``cwd``), replacing k3d widget outputs by iframes of snapshots written to
    ``out_dir``; returns the wall time in seconds of the notebook's own cells."""
    client = NotebookClient(nb, timeout=-1, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    spent = 0.0
    with client.setup_kernel(env=dict(os.environ)):
        for index, cell in enumerate(nb.cells):
            start = time.perf_counter()
            client.execute_cell(cell, index)
            spent += time.perf_counter() - start
            ids = _widget_ids(cell)
            if not ids:
                continue
            prefix = str(out_dir / f"{stem}_cell{index}")
            probe = nbformat.v4.new_code_cell(SNAPSHOT_CODE + f"_facecourse_snapshots({ids!r}, {prefix!r})")
            client.execute_cell(probe, index, store_history=False)
            nb.cells[index] = cell  # nbclient stores the cell it ran at its index
            names = json.loads("".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout"))
            kept = [o for o in cell.outputs if WIDGET not in o.get("data", {})]
            cell.outputs = kept + [nbformat.v4.new_output("display_data", data={"text/html": _iframe(n)})
                                   for n in names]
    return spent


def _title_and_objectives(nb) -> tuple[str, str]:
    first = nb.cells[0].source
    title = first.splitlines()[0].lstrip("# ").strip()
    match = re.search(r"\*\*Learning objectives\*\*\s*\n(.*?)(?:\n\s*\n|\Z)", first + "\n\n", re.S)
    if match is None:  # objectives in a later markdown cell
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        match = re.search(r"\*\*Learning objectives\*\*\s*\n(.*?)(?:\n\s*\n|\Z)", text, re.S)
    items = [re.sub(r"^\s*[-*]\s*", "", line) for line in (match.group(1).splitlines() if match else [])
             if line.strip()]
    return title, items


def _index(entries, mode: str) -> str:
    rows = []
    for e in entries:
        objectives = "".join(f"<li>{html.escape(o)}</li>" for o in e["objectives"])
        rows.append(f'<tr><td><a href="{html.escape(e["page"])}">{html.escape(e["title"])}</a></td>'
                    f'<td style="text-align:right">{e["seconds"]:.0f} s</td><td><ul>{objectives}</ul></td></tr>')
    total = sum(e["seconds"] for e in entries)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>facecourse — the course</title>
<style>body {{ font-family: sans-serif; max-width: 70em; margin: 2em auto }} td {{ vertical-align: top;
padding: 0.3em 0.8em; border-bottom: 1px solid #ddd }} ul {{ margin: 0 }}</style></head><body>
<h1>facecourse: monocular 3D face reconstruction with FLAME</h1>
<p>The executed course, mode <code>{html.escape(mode)}</code>. Run time: wall time of each notebook's cells on the
machine that built this site ({total:.0f} s in all). 3D views are k3d snapshots: drag to turn them.</p>
<table><tr><th>notebook</th><th>run time</th><th>learning objectives</th></tr>
{chr(10).join(rows)}
</table></body></html>
"""


def build(paths, out_dir: Path) -> list[dict]:
    """Execute every notebook of ``paths`` into ``out_dir`` (one HTML page each, snapshots, index.html,
    times.json); returns the index entries."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    entries = []
    for path in map(Path, paths):
        nb = nbformat.read(path, as_version=4)
        seconds = execute(nb, path.parent, out_dir, path.stem)
        body, _ = exporter.from_notebook_node(nb)
        page = f"{path.stem}.html"
        (out_dir / page).write_text(body, encoding="utf-8")
        title, objectives = _title_and_objectives(nb)
        entries.append({"notebook": path.name, "page": page, "title": title, "objectives": objectives,
                        "seconds": round(seconds, 1)})
        print(f"{path.name}: {seconds:.0f} s -> {out_dir / page}", flush=True)
    mode = os.environ.get("FACECOURSE_MODE", "full")
    (out_dir / "index.html").write_text(_index(entries, mode), encoding="utf-8")
    (out_dir / "times.json").write_text(json.dumps({"mode": mode, "notebooks": entries}, indent=1), encoding="utf-8")
    return entries


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "course")
    args = parser.parse_args(argv)
    build(args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")), args.out.resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
