"""facecourse.settings.progress_bar: the widget bar where it is live, a text bar when FACECOURSE_PROGRESS=text."""

from __future__ import annotations

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
