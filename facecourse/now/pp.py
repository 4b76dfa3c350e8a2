"""MeshLab picked-points files (``.pp``): the format of the NoW scan landmarks.

A ``.pp`` file is a small XML document::

    <!DOCTYPE PickedPoints>
    <PickedPoints>
     <DocumentData>
      <DateTime time="..." date="..."/>
      <User name="..."/>
      <DataFileName name="scan.obj"/>
      <templateName name=""/>
     </DocumentData>
     <point x="..." y="..." z="..." active="1" name="0"/>
     ...
    </PickedPoints>

The reader parses the XML (attribute order and whitespace are free); the writer emits exactly the layout
above, eight header lines then one ``<point>`` per line, because the official NoW reader picks the
points by line number (lines 9-15).
"""

from __future__ import annotations

import datetime as _dt
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from facecourse.data.atomic import atomic_open


def read_pp(path: str | os.PathLike, expected: int | None = None) -> np.ndarray:
    """Read the points of a MeshLab picked-points file, in file order.

    Args:
        path: the ``.pp`` file.
        expected: if given, the number of points the file must hold (7 for NoW scans).

    Returns:
        ``(N, 3)`` float64 positions in the file's units (millimetres for NoW scans).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a picked-points XML document, a point lacks a finite x/y/z, or the count differs
            from ``expected``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"picked-points file not found: {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    if "<!ENTITY" in text:  # never expand entities from an untrusted file
        raise ValueError(f"{path}: XML entity declarations are not allowed in a .pp file")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"{path} is not valid picked-points XML: {exc}") from exc
    if root.tag != "PickedPoints":
        raise ValueError(f"{path}: root element must be <PickedPoints>, got <{root.tag}>")
    points = []
    for k, elem in enumerate(root.iter("point")):
        try:
            xyz = [float(elem.attrib[a]) for a in ("x", "y", "z")]
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: point {k} needs numeric x, y, z attributes, got {elem.attrib}") from exc
        points.append(xyz)
    arr = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: non-finite landmark coordinates")
    if expected is not None and len(arr) != expected:
        raise ValueError(f"{path}: expected {expected} points, found {len(arr)}")
    return arr


def write_pp(path: str | os.PathLike, points, names=None, data_file_name: str = "",
             user: str = "facecourse") -> Path:
    """Write points as a MeshLab picked-points file (atomically), in the layout the NoW tools read.

    Args:
        path: destination ``.pp`` file.
        points: ``(N, 3)`` array-like positions (NoW: millimetres, scan coordinates).
        names: optional ``N`` point names (default ``"0"``, ``"1"``, ...).
        data_file_name: the mesh file the points were picked on (recorded in the header).
        user: recorded in the header.

    Returns:
        The path written.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite")
    names = [str(i) for i in range(len(pts))] if names is None else [str(n) for n in names]
    if len(names) != len(pts):
        raise ValueError(f"got {len(names)} names for {len(pts)} points")
    now = _dt.datetime.now(_dt.timezone.utc)
    lines = [
        "<!DOCTYPE PickedPoints>",
        "<PickedPoints>",
        " <DocumentData>",
        f'  <DateTime time="{now:%H:%M:%S}" date="{now:%Y-%m-%d}"/>',
        f"  <User name={quoteattr(user)}/>",
        f"  <DataFileName name={quoteattr(data_file_name)}/>",
        '  <templateName name=""/>',
        " </DocumentData>",
    ]
    lines += [f' <point x="{float(x)!r}" y="{float(y)!r}" z="{float(z)!r}" active="1" name={quoteattr(n)}/>'
              for (x, y, z), n in zip(pts, names)]
    lines.append("</PickedPoints>")
    with atomic_open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return Path(path)


__all__ = ["read_pp", "write_pp"]
