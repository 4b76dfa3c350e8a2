"""Where data lives.

The data directory is ``$FACECOURSE_DATA``. When it is unset: the ``data/`` folder of the source checkout
this package was installed from (editable install, the course's normal set-up), so a notebook finds the
same data whatever its working directory; otherwise ``./data``. (DESIGN.md says "default ``./data``"; the
checkout rule is that default made independent of the notebook's working directory.)

Real assets keep their official names and layouts directly under the data directory (e.g.
``FLAME2020/generic_model.pkl``, ``NoW_Dataset/``); the synthetic embedded default lives in
``synthetic/`` in the same formats.
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Return the data directory (not created)."""
    env = os.environ.get("FACECOURSE_DATA")
    if env:
        return Path(env).expanduser().resolve()
    if (_CHECKOUT / "data_download.py").is_file():
        return _CHECKOUT / "data"
    return Path("data").resolve()


def resolve_data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data directory a function with an optional ``root`` argument works in: ``root`` as a Path when
    given (tests, another data folder), else :func:`data_dir`."""
    return Path(root) if root is not None else data_dir()


def synthetic_dir() -> Path:
    """Return ``data_dir() / "synthetic"``: the embedded default, in the official file formats."""
    return data_dir() / "synthetic"
