"""Shared fixtures for the tests.

Plain helper functions (called directly by tests, with arguments) live in ``tests/helpers.py`` and are
imported with ``from helpers import ...``; this file builds the fixtures on them:

- ``data_dir``: ``$FACECOURSE_DATA`` pointed at ``tmp_path / "data"`` (not created); returns that path.
  Use it with ``@pytest.fixture(autouse=True)`` wrappers or ``@pytest.mark.usefixtures("data_dir")``.
- ``tiny_flame_path``: (module scope) a folder with the tiny FLAME model (``helpers.tiny_model``), a DECA
  landmark embedding on its faces and masks; returns the path of its ``generic_model.pkl``.
- ``toy_now``: a NoW-layout folder of toy heads (``helpers.toy_head``) and coarser toy-head predictions in
  metres for every image: ``(dataset folder, predictions folder, images, (v, f, lm) of the prediction)``.
- ``renderer``: (module scope) ``HeadRenderer.default("small", n_shape=20, n_exp=10)`` on the synthetic model.

No fixture here is autouse: other test files see no change unless they ask for one.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from helpers import make_toy_now_dataset, toy_head, write_tiny_model_dir


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    """The data folder of the package (``$FACECOURSE_DATA``) set to ``tmp_path / "data"``, which is returned."""
    path = tmp_path / "data"
    monkeypatch.setenv("FACECOURSE_DATA", str(path))
    return path


@pytest.fixture(scope="module")
def tiny_flame_path(tmp_path_factory):
    """``generic_model.pkl`` of the tiny FLAME model, with its landmark embedding and masks beside it."""
    return write_tiny_model_dir(tmp_path_factory.mktemp("tiny_flame"))


@pytest.fixture()
def toy_now(tmp_path):
    """A toy NoW dataset in ``tmp_path / "NoW"`` and predictions (a coarser toy head, metres) in ``tmp_path / "pred"``."""
    from facecourse.now import M_TO_MM, write_prediction

    data, pred = tmp_path / "NoW", tmp_path / "pred"
    images = make_toy_now_dataset(data)
    v, f, lm = toy_head(2)  # coarser "prediction": the right shape family, in metres
    for im in images:
        write_prediction(pred, im, v / M_TO_MM, f, lm / M_TO_MM)
    return data, pred, images, (v, f, lm)


@pytest.fixture(scope="module")
def renderer():
    """The head renderer on the small synthetic FLAME model (built on demand), 20 shape / 10 expression."""
    from facecourse.render import HeadRenderer

    return HeadRenderer.default("small", n_shape=20, n_exp=10)


@pytest.fixture()
def photo_files(tmp_path):
    """``(astronaut.jpg, notes.png, noise.png)`` in ``tmp_path/"in"``: a real photo (scikit-image's astronaut), a
    text file named like an image, and a picture of noise (no face)."""
    skimage_data = pytest.importorskip("skimage.data")
    folder = tmp_path / "in"
    folder.mkdir()
    good = folder / "astronaut.jpg"
    Image.fromarray(skimage_data.astronaut()).save(good, quality=95)
    text = folder / "notes.png"
    text.write_text("not a photo")
    noise = folder / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)).save(noise)
    return good, text, noise
