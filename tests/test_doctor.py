"""``facecourse doctor``: versions, device, mode, data sources (real wins over synthetic) and advice."""

from __future__ import annotations

import json
import platform

import numpy
import pytest
import scipy
import torch

from facecourse import cli, doctor


@pytest.fixture()
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path))
    return tmp_path


def touch(path, content=b""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_versions_match_the_imported_packages():
    versions = doctor.package_versions()
    assert versions["python"] == platform.python_version()
    assert versions["numpy"] == numpy.__version__ and versions["scipy"] == scipy.__version__
    assert versions["torch"] == torch.__version__
    assert set(versions) == {"python", *doctor.PACKAGES}


def test_missing_package_is_none_and_fails_the_command(data, monkeypatch, capsys):
    monkeypatch.setitem(doctor.PACKAGES, "no-such-package", ("no-such-package-xyz", True))
    assert doctor.package_versions()["no-such-package"] is None
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "no-such-package" in out and "MISSING (required)" in out and "make install" in out


def test_device_and_mode_follow_the_settings(data, monkeypatch):
    monkeypatch.setenv("FACECOURSE_DEVICE", "cpu")
    monkeypatch.setenv("FACECOURSE_MODE", "ci")
    rep = doctor.report()
    assert rep["device"]["device"] == "cpu" and rep["device"]["cuda_available"] == torch.cuda.is_available()
    assert rep["mode"] == {"mode": "ci", "error": None}
    monkeypatch.setenv("FACECOURSE_MODE", "fast")
    rep = doctor.report()
    assert rep["mode"]["mode"] is None and "FACECOURSE_MODE" in rep["mode"]["error"]
    assert any("FACECOURSE_MODE" in s for s in rep["next_steps"])


def test_empty_data_dir_says_build_the_synthetic_data(data):
    rep = doctor.report()
    assert rep["data_dir"] == str(data)
    assert {k: v["source"] for k, v in rep["data"].items()} == {
        "flame": "missing", "landmark_embedding": "missing", "now": "missing", "coma": "missing",
        "checkpoints": "missing"}
    assert "data_download.py synthetic" in rep["next_steps"][0]


def test_synthetic_data_is_reported_as_synthetic(data):
    for size in ("small", "full"):
        touch(data / "synthetic/flame" / size / "generic_model.pkl")
        touch(data / "synthetic/flame" / size / "landmark_embedding.npy")
    touch(data / "synthetic/NoW_Dataset/final_release_version/imagepathsvalidation.txt")
    rep = doctor.report()
    sources = {k: v["source"] for k, v in rep["data"].items()}
    assert sources["flame"] == sources["landmark_embedding"] == sources["now"] == "synthetic"
    assert rep["data"]["flame"]["path"] == str(data / "synthetic/flame/small/generic_model.pkl")
    assert "small, full" in rep["data"]["flame"]["detail"]
    steps = " ".join(rep["next_steps"])
    assert "data_download.py synthetic" not in steps
    assert "FLAME_USERNAME" in steps and "data_download.py flame2020" in steps and "NOW_USERNAME" in steps


def test_real_data_wins_over_synthetic(data):
    touch(data / "synthetic/flame/small/generic_model.pkl")
    touch(data / "synthetic/NoW_Dataset/final_release_version/imagepathsvalidation.txt")
    touch(data / "FLAME2020/generic_model.pkl")
    rep = doctor.report()  # real FLAME without its embedding: the loader still uses the synthetic model
    assert rep["data"]["flame"]["source"] == "synthetic" and rep["data"]["flame"]["real_needs_embedding"]
    assert "no landmark embedding" in rep["data"]["flame"]["detail"]
    assert any("data_download.py landmark-embedding" in s for s in rep["next_steps"])
    touch(data / "FLAME2020/landmark_embedding.npy")
    rep = doctor.report()
    assert rep["data"]["flame"] == {"source": "real", "path": str(data / "FLAME2020/generic_model.pkl"),
                                    "detail": "FLAME 2020", "real_needs_embedding": False}
    now = data / "NoW_Dataset/final_release_version"
    touch(now / "imagepathsvalidation.txt")
    touch(now / "scans/s1/scan.obj")
    touch(now / "scans_lmks_onlypp/s1/scan_picked_points.pp")
    (now / "iphone_pictures").mkdir(parents=True)
    touch(data / "COMA_data/FaceTalk_170725_00137_TA/bareteeth/bareteeth.000001.ply")
    rep = doctor.report()
    assert {k: v["source"] for k, v in rep["data"].items() if k != "checkpoints"} == {
        "flame": "real", "landmark_embedding": "real", "now": "real", "coma": "real"}
    assert rep["data"]["coma"]["detail"] == "1 subjects"
    assert not any("data_download.py" in s for s in rep["next_steps"])


def test_ringnet_embedding_counts_and_agrees_with_the_loader(data, monkeypatch):
    from facecourse.flame import paths

    touch(data / "FLAME2020/generic_model.pkl")
    touch(data / "FLAME2020/flame_static_embedding.pkl")
    touch(data / "FLAME2020/flame_dynamic_embedding.npy")
    rep = doctor.report()
    assert rep["data"]["flame"]["source"] == rep["data"]["landmark_embedding"]["source"] == "real"
    assert paths.default_model_path("small") == data / "FLAME2020/generic_model.pkl"


def test_incomplete_real_now_falls_back_to_synthetic(data):
    touch(data / "NoW_Dataset/final_release_version/scans/s1/scan.obj")  # only part of the real set
    touch(data / "synthetic/NoW_Dataset/final_release_version/imagepathsvalidation.txt")
    now = doctor.report()["data"]["now"]
    assert now["source"] == "synthetic" and "incomplete" in now["detail"]


def test_checkpoints_are_listed(data):
    touch(data / "checkpoints/encoder/coma_ci.pt")
    touch(data / "checkpoints/notes.txt")
    ckpt = doctor.report()["data"]["checkpoints"]
    assert ckpt == {"source": "present", "path": str(data / "checkpoints"), "detail": "encoder/coma_ci.pt"}


def test_cli_text_and_json(data, capsys):
    assert cli.main(["doctor"]) == 0
    text = capsys.readouterr().out
    for word in ("versions:", "torch-geometric", "libigl", "pytorch3d", "device:", "mode:", "data dir:",
                 "landmark_embedding", "checkpoints", "next steps:"):
        assert word in text
    assert cli.main(["doctor", "--json"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed == json.loads(json.dumps(doctor.report()))


def test_the_photo_extra_is_reported_and_its_absence_advised(data, monkeypatch):
    versions = doctor.package_versions()
    assert versions["dlib-bin"] is not None and versions["face-models"] is not None, "make test installs [photo]"
    rep = doctor.report()
    assert not any("[photo]" in step for step in rep["next_steps"])
    monkeypatch.setitem(doctor.PACKAGES, "dlib-bin", ("no-such-dlib-xyz", False))
    rep = doctor.report()
    assert rep["versions"]["dlib-bin"] is None
    assert any("pip install -e '.[photo]'" in step for step in rep["next_steps"])
    assert "not installed (optional)" in doctor.format_report(rep)
