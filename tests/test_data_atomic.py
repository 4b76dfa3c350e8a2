"""Atomic writes: the final file appears whole or not at all, with the usual permissions."""

import os

import pytest

from facecourse.data.atomic import atomic_open, atomic_path, staging_dir


def test_atomic_files_get_the_usual_permissions(tmp_path):
    with atomic_open(tmp_path / "a.txt", "w") as handle:
        handle.write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_read_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "c.txt", "r"):
            pass


def test_staging_dir_is_beside_the_target_with_the_usual_permissions_and_removed(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    with staging_dir(tmp_path / "sub" / "target", "build") as folder:
        assert folder.parent == tmp_path / "sub" and folder.name.startswith(".target.build-")
        assert folder.stat().st_mode & 0o777 == 0o777 & ~mask
        (folder / "x").write_text("x")
    assert list((tmp_path / "sub").iterdir()) == []
    with pytest.raises(RuntimeError):
        with staging_dir(tmp_path / "t") as folder:
            (folder / "half").write_text("half")
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]
