"""facecourse.settings.progress_bar: the widget bar where it is live, a text bar when FACECOURSE_PROGRESS=text."""

from __future__ import annotations

import io

import pytest
import tqdm.auto
import tqdm.std

from facecourse.settings import progress_bar


def test_text_style_gives_the_plain_bar(monkeypatch):
    monkeypatch.setenv("FACECOURSE_PROGRESS", "text")
    bar = progress_bar(range(3), disable=True)
    assert type(bar) is tqdm.std.tqdm
    assert list(bar) == [0, 1, 2]


def test_auto_style_gives_tqdm_auto(monkeypatch):
    monkeypatch.delenv("FACECOURSE_PROGRESS", raising=False)
    assert isinstance(progress_bar(range(3), disable=True), tqdm.auto.tqdm)


def test_bad_style_is_named(monkeypatch):
    monkeypatch.setenv("FACECOURSE_PROGRESS", "widget")
    with pytest.raises(ValueError, match="FACECOURSE_PROGRESS must be one of"):
        progress_bar(range(3))


def test_text_bars_nest_without_cursor_moves_and_redraw_rarely(monkeypatch):
    """A run's bar inside the ablation's: no cursor-up escapes, and a fast loop of 500 steps writes a handful
    of frames (start and end), not one per step, so an executed notebook's saved output stays readable."""
    monkeypatch.setenv("FACECOURSE_PROGRESS", "text")
    out = io.StringIO()
    outer = progress_bar(total=2, desc="ablation", file=out)
    for _ in range(2):
        for _ in progress_bar(range(500), desc="run", file=out):
            pass
        outer.update()
    outer.close()
    text = out.getvalue()
    assert "\x1b[A" not in text
    assert text.count("\r") < 12
    assert "run: 100%" in text and "ablation: 100%" in text
