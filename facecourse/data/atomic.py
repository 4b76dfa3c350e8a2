"""Atomic file writing: nothing half-written is ever left at a final path.

Every writer in facecourse (synthetic assets, checkpoints, NoW results, downloads) writes to a temporary
file in the destination folder and renames it into place (``os.replace`` is atomic on one file system).
Writers of a whole folder (archive installs, synthetic builds) fill a :func:`staging_dir` beside the target
and move it, or its files, into place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it.

    Use for writers that want a file name (``np.save``, ``torch.save``, ``trimesh.export``)::

        with atomic_path("out/model.pkl") as tmp:
            write_something(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the final file the usual permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it to ``path`` when the block succeeds."""
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_open mode must write ('w'), got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode.replace("x", "w")) as handle:
            yield handle


@contextlib.contextmanager
def staging_dir(target: str | os.PathLike, tag: str = "staging") -> Iterator[Path]:
    """Yield a new empty folder ``.<name>.<tag>-XXXX`` beside the folder ``target``; remove it when the block ends.

    Being on the same file system as ``target``, the folder itself or the files in it can be moved into place
    with ``os.replace`` (atomic); whatever is still in it at the end, on success or error, is deleted. It gets
    the usual folder permissions (``tempfile.mkdtemp`` makes 0700), so a folder renamed into place is
    readable like one made by ``mkdir``. ``target``'s parent is created.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{tag}-", dir=target.parent))
    os.chmod(folder, 0o777 & ~_umask())
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
