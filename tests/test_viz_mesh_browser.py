"""The k3d views in a real browser: notebook 01 run in JupyterLab inside Chromium (driven by playwright).

JupyterLab is started on 127.0.0.1 with a token on a copy of notebook 01; the page runs every cell; then the
interactive head (``facecourse.viz.flame.interactive_head``) must have drawn non-blank pixels, stand upright (taller
than wide on screen: k3d is z-up, FLAME y-up, so a view that is not set up frontal shows the head lying on its
side), and redraw when a slider moves. Screenshots are kept in ``build/browser/``.

Needs Debian's ``chromium`` (``make test`` installs it with apt-get when running as root) and the ``playwright``
package (dev extra); playwright's own browser download is never used. Skipped, with the reason, without them.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
ARTEFACTS = ROOT / "build" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# software WebGL: the machines have no GPU
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
TIMEOUT_MS = 240_000

if CHROMIUM is None:
    pytest.skip("SKIPPED: no Chromium on this machine (`apt-get install chromium`, or run `make test` as root): "
                "the k3d views were NOT checked in a browser", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="SKIPPED: playwright is not installed (pip install "
                               "-e '.[dev]'): the k3d views were NOT checked in a browser")

ALL_CELLS_RAN = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  const kernel = nb && nb.sessionContext.session && nb.sessionContext.session.kernel;
  const code = nb ? nb.content.widgets.filter(c => c.model.type === 'code') : [];
  return kernel && kernel.status === 'idle' && code.length > 0 && code.every(c => c.model.executionCount !== null);
}"""
KERNEL_IDLE = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = nb && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel;
  return kernel && kernel.status === 'idle';
}"""
CELL_ERRORS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => c.model.type === 'code')
  .flatMap(c => { const out = c.model.outputs; const errs = [];
                  for (let i = 0; i < out.length; i++) { const o = out.get(i);
                    if (o.type === 'error') errs.push(o.toJSON().ename + ': ' + o.toJSON().evalue); }
                  return errs; })"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 with a token, serving a copy of notebook 01; yields its notebook URL."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / "01_flame.ipynb", root / "01_flame.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--allow-root"],
        env=dict(os.environ, FACECOURSE_MODE="ci"), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    f"JupyterLab did not start: {(root / 'jupyterlab.log').read_text()[-2000:]}"
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/01_flame.ipynb?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _image(png: bytes) -> np.ndarray:
    return plt.imread(io.BytesIO(png), format="png")[..., :3]


def _foreground(img: np.ndarray) -> np.ndarray:
    """Pixels that differ from the background colour (the most common colour along the border)."""
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    colours, counts = np.unique(np.round(border, 2), axis=0, return_counts=True)
    return np.abs(img - colours[np.argmax(counts)]).max(axis=-1) > 0.06


def _largest_blob(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    return labels == 1 + int(np.argmax(ndimage.sum(mask, labels, index=np.arange(1, n + 1))))


def _settled_screenshot(canvas, name: str, ready=lambda img: True) -> np.ndarray:
    """A screenshot of the canvas once ``ready(img)`` holds and two consecutive screenshots agree (k3d draws
    asynchronously), saved under build/browser/."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    last = None
    while time.monotonic() < deadline:
        img = _image(canvas.screenshot())
        if last is not None and np.array_equal(img, last) and ready(img):
            plt.imsave(ARTEFACTS / name, img)
            return img
        last = img
        time.sleep(0.5)
    plt.imsave(ARTEFACTS / name, last)
    raise AssertionError(f"the k3d canvas never showed the expected picture: see build/browser/{name}")


def _head(img: np.ndarray) -> np.ndarray:
    """The head's silhouette: the largest drawn blob (k3d's axes helper sits apart in a corner)."""
    return _largest_blob(_foreground(img))


def test_notebook_01_draws_an_upright_head_that_follows_the_sliders(lab):
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(lab)
            # JupyterLab's news pop-up and k3d's menu panel would lie over the canvas in its screenshots
            page.add_style_tag(content=".Toastify, .k3d-target .lil-gui { display: none !important; }")
            page.wait_for_function(KERNEL_IDLE, timeout=TIMEOUT_MS, polling=500)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_function(ALL_CELLS_RAN, timeout=TIMEOUT_MS, polling=500)
            page.screenshot(path=str(ARTEFACTS / "01_flame_page.png"))
            assert page.evaluate(CELL_ERRORS) == [], "notebook 01 raised in the browser"

            canvas = page.locator(".k3d-target canvas")
            assert canvas.count() == 1, "one k3d view in notebook 01"
            canvas.scroll_into_view_if_needed()
            before = _settled_screenshot(canvas, "01_head_before.png", ready=lambda img: _head(img).any())
            head = _head(before)
            assert head.mean() > 0.02, f"the k3d canvas is blank ({head.mean():.2%} of its pixels drawn)"
            rows, cols = np.flatnonzero(head.any(axis=1)), np.flatnonzero(head.any(axis=0))
            height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
            assert height > width, f"the head is not upright on screen: {height} px tall, {width} px wide"
            assert height < head.shape[0] and width < head.shape[1], "the head is not framed inside the view"

            readout = page.locator(".widget-slider", has_text="shape 1").locator(".widget-readout")
            readout.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("3")
            page.keyboard.press("Enter")
            after = _settled_screenshot(canvas, "01_head_shape1_3.png",
                                        ready=lambda img: (_head(img) != head).mean() > 0.002)
            moved = (_head(after) != head).mean()
            assert moved > 0.002, f"moving the 'shape 1' slider changed {moved:.2%} of the head's silhouette"
        finally:
            browser.close()
