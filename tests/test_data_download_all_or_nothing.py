"""Installs are all-or-nothing and check content: each expected file is opened with the project's safe reader
before anything moves, and the asset folder is swapped in whole (the old one kept until the new is in place)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
from helpers import make_zip

import facecourse.data.download as download
from facecourse.data.download import DownloadError, install_archive
from facecourse.data.safe_load import UnsafePickleError, check_file_content

EXPECT = ("generic_model.pkl", "male_model.pkl")


def _pickled(tag: int) -> bytes:
    return pickle.dumps({"tag": np.arange(3) + tag}, protocol=2)


@pytest.fixture()
def installed(tmp_path):
    """A FLAME2020 folder installed from a good archive, plus a file another asset put there."""
    target = tmp_path / "FLAME2020"
    good = tmp_path / "good.zip"
    good.write_bytes(make_zip({"generic_model.pkl": _pickled(1), "male_model.pkl": _pickled(2)}))
    install_archive(good, target, marker="generic_model.pkl", expect=EXPECT)
    (target / "landmark_embedding.npy").write_bytes(b"another asset's file")
    return target


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_text_file_named_like_the_model_is_refused_and_nothing_changes(installed, tmp_path):
    before = _snapshot(installed)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(make_zip({"generic_model.pkl": b"this is a text file, not a pickle\n", "male_model.pkl": _pickled(3)}))
    with pytest.raises(DownloadError, match=r"generic_model\.pkl is not a readable \.pkl file.*nothing was installed"):
        install_archive(bad, installed, marker="generic_model.pkl", expect=EXPECT, asset="flame2020")
    assert _snapshot(installed) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FLAME2020", "bad.zip", "good.zip"]  # no staging left


def test_a_malicious_pickle_in_an_archive_is_refused_unrun(installed, tmp_path):
    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.zip"
    evil.write_bytes(make_zip({"generic_model.pkl": pickle.dumps(Payload(), protocol=2), "male_model.pkl": _pickled(3)}))
    with pytest.raises(DownloadError, match="system"):
        install_archive(evil, installed, marker="generic_model.pkl", expect=EXPECT)
    assert not marker.exists()
    assert check_file_content(installed / "generic_model.pkl") == installed / "generic_model.pkl"
    (tmp_path / "x.pkl").write_bytes(pickle.dumps(Payload(), protocol=2))
    with pytest.raises(UnsafePickleError, match="system"):
        check_file_content(tmp_path / "x.pkl")
    assert not marker.exists()


def test_a_name_collision_half_way_leaves_the_old_model(installed, tmp_path):
    """The new release has a file where the installed folder has a folder: found before anything moves."""
    (installed / "extras").mkdir()
    (installed / "extras" / "notes.txt").write_text("old")
    before = _snapshot(installed)
    clash = tmp_path / "clash.zip"
    clash.write_bytes(make_zip({"generic_model.pkl": _pickled(9), "male_model.pkl": _pickled(9), "extras": b"x"}))
    with pytest.raises(DownloadError, match="cannot replace folder"):
        install_archive(clash, installed, marker="generic_model.pkl", expect=EXPECT)
    assert _snapshot(installed) == before  # generic_model.pkl not replaced


def test_the_old_folder_is_kept_until_the_new_one_is_in_place(installed, tmp_path, monkeypatch):
    before = _snapshot(installed)
    real_replace = os.replace
    calls = []

    def failing_second_swap(src, dst):
        calls.append((str(src), str(dst)))
        if len(calls) == 2:  # the new folder's rename into place
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(download.os, "replace", failing_second_swap)
    newer = tmp_path / "newer.zip"
    newer.write_bytes(make_zip({"generic_model.pkl": _pickled(4), "male_model.pkl": _pickled(5)}))
    with pytest.raises(OSError, match="disk full"):
        install_archive(newer, installed, marker="generic_model.pkl", expect=EXPECT)
    assert _snapshot(installed) == before  # put back whole
    monkeypatch.undo()
    install_archive(newer, installed, marker="generic_model.pkl", expect=EXPECT)
    after = _snapshot(installed)
    assert after["generic_model.pkl"] == _pickled(4) and after["landmark_embedding.npy"] == before["landmark_embedding.npy"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FLAME2020", "good.zip", "newer.zip"]  # no backup left
