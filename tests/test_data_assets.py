"""The asset registry, presence checks, manifest, credentials and the synthetic build (with fake builders)."""

from __future__ import annotations

import hashlib
import io
import os
import sys
from pathlib import Path

import pytest
from helpers import make_zip

from facecourse.data import assets as assets_mod
from facecourse.data.assets import (
    ASSETS,
    SYNTHETIC_BUILDERS,
    Account,
    SyntheticBuilder,
    asset_status,
    build_synthetic,
    describe_assets,
    fetch_asset,
    get_asset,
    get_credentials,
    match_local_file,
    read_manifest,
    record_in_manifest,
    resolve_builder,
)
from facecourse.data.download import DownloadError

ROOT = Path(__file__).resolve().parents[1]


def load_cli():
    sys.path.insert(0, str(ROOT))
    try:
        import data_download
    finally:
        sys.path.pop(0)
    return data_download


# ---------------------------------------------------------------------------------------------- registry


def test_registry_has_every_asset_of_the_course():
    assert list(ASSETS) == ["synthetic", "flame2020", "flame2023-open", "landmark-embedding", "now", "coma"]
    for asset in ASSETS.values():
        assert asset.licence and asset.licence_url.startswith("https://") and asset.size and asset.location
        assert asset.present, asset.name
        for remote in asset.files:
            assert remote.url.startswith("https://") and remote.kind in ("archive", "file")
            assert "password" not in remote.url and "username" not in remote.url


def test_real_assets_keep_official_names_and_layouts():
    flame = get_asset("flame2020")
    assert [f.name for f in flame.files] == ["FLAME2020.zip", "FLAME_masks.zip"]
    assert flame.present == ("FLAME2020/generic_model.pkl",)
    assert flame.files[0].url == "https://download.is.tue.mpg.de/download.php?domain=flame&sfile=FLAME2020.zip&resume=1"
    assert not flame.files[1].login  # the public masks server never receives credentials
    assert get_asset("flame2023-open").present == ("FLAME2023Open/flame2023_Open.pkl",)
    assert get_asset("landmark-embedding").files[0].dest == "FLAME2020/landmark_embedding.npy"
    assert get_asset("coma").files[0].name == "COMA_data.zip"
    assert all(f.dest.startswith("NoW_Dataset/final_release_version") for f in get_asset("now").files)
    for name in ("flame2020", "flame2023-open", "now", "coma"):
        assert get_asset(name).account is not None
    assert get_asset("landmark-embedding").account is None and get_asset("synthetic").account is None


def test_synthetic_builders_are_named_lazily():
    assert [(b.target, b.function, b.args) for b in SYNTHETIC_BUILDERS] == [
        ("synthetic/flame/small", "facecourse.flame.synthetic:build_synthetic_flame", ("small",)),
        ("synthetic/flame/full", "facecourse.flame.synthetic:build_synthetic_flame", ("full",)),
        ("synthetic/NoW_Dataset", "facecourse.now.synthetic:build_synthetic_now", ()),
        ("synthetic/paired/ci", "facecourse.datasets.paired_synthetic:build_paired_synthetic", ("ci",)),
    ]
    assert SYNTHETIC_BUILDERS[2].present == "final_release_version/imagepathsvalidation.txt"


def test_registered_builders_exist_and_accept_the_call_data_download_makes():
    import inspect

    for builder in SYNTHETIC_BUILDERS:
        inspect.signature(resolve_builder(builder.function)).bind("out_dir", *builder.args)  # TypeError if not


def test_now_layout_agrees_with_facecourse_now():
    layout = pytest.importorskip("facecourse.now.layout")
    assert assets_mod.NOW_ROOT == layout.DATASET_SUBDIR.as_posix()
    assert f"synthetic/{assets_mod.NOW_ROOT}" == (Path("synthetic") / layout.DATASET_SUBDIR).as_posix()
    assert {f.name for f in get_asset("now").files if f.kind == "file"} == set(layout.SPLIT_FILES.values())
    assert resolve_builder("facecourse.data.download:sha256_file").__name__ == "sha256_file"
    with pytest.raises(DownloadError, match="not available"):
        resolve_builder("facecourse.no_such_module:f")
    with pytest.raises(DownloadError, match="no function"):
        resolve_builder("facecourse.data.download:no_such_function")


def test_unknown_asset_is_named():
    with pytest.raises(ValueError, match="flame2020"):
        get_asset("flame2021")


def test_status_missing_partial_present(tmp_path):
    assert asset_status("now", tmp_path) == "missing"
    now = tmp_path / "NoW_Dataset" / "final_release_version"
    (now / "scans" / "subj").mkdir(parents=True)
    assert asset_status("now", tmp_path) == "partial"
    (now / "scans" / "subj" / "scan.obj").write_text("v 0 0 0\n")
    (now / "scans_lmks_onlypp" / "subj").mkdir(parents=True)
    (now / "iphone_pictures").mkdir(parents=True)
    (now / "imagepathsvalidation.txt").write_text("subj/selfie/IMG_1.jpg\n")
    assert asset_status("now", tmp_path) == "present"
    (tmp_path / "COMA_data" / "FaceTalk_170725_00137_TA").mkdir(parents=True)
    assert asset_status("coma", tmp_path) == "present"


def test_describe_and_list_show_licence_size_location_status(tmp_path, monkeypatch, capsys):
    (tmp_path / "FLAME2020").mkdir()
    (tmp_path / "FLAME2020" / "generic_model.pkl").write_bytes(b"")
    rows = {r["name"]: r for r in describe_assets(tmp_path)}
    assert rows["flame2020"]["status"] == "present" and rows["coma"]["status"] == "missing"
    assert rows["flame2020"]["location"] == str(tmp_path / "FLAME2020")
    assert "FLAME_USERNAME" in rows["flame2020"]["account"]
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path))
    assert load_cli().main(["--list"]) == 0
    out = capsys.readouterr().out
    for asset in ASSETS.values():
        assert asset.name in out and asset.licence in out and asset.size in out
    assert "[present]" in out and "[missing]" in out


def test_cli_has_no_credential_option():
    parser = load_cli().build_parser()
    options = " ".join(o for action in parser._actions for o in action.option_strings).lower()
    assert "pass" not in options and "user" not in options and "token" not in options
    with pytest.raises(SystemExit):
        parser.parse_args(["flame2020", "--password", "x"])


def test_cli_rejects_unknown_assets(capsys):
    with pytest.raises(SystemExit):
        load_cli().main(["flame2021"])
    assert "flame2021" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- manifest


def test_manifest_records_sha256_atomically(tmp_path):
    remote = get_asset("flame2020").files[0]
    archive = tmp_path / "FLAME2020.zip"
    archive.write_bytes(b"zip bytes")
    entry = record_in_manifest("flame2020", remote, archive, tmp_path)
    assert entry["sha256"] == hashlib.sha256(b"zip bytes").hexdigest() and entry["size"] == 9
    record_in_manifest("coma", get_asset("coma").files[0], archive, tmp_path)
    manifest = read_manifest(tmp_path)
    assert set(manifest) == {"flame2020", "coma"} and manifest["flame2020"]["FLAME2020.zip"] == entry
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FLAME2020.zip", "manifest.json"]  # no temp files


# ------------------------------------------------------------------------------------------- credentials


def test_credentials_from_environment_prompt_or_clear_error(monkeypatch):
    account = Account("FLAME", "https://flame.is.tue.mpg.de/", "FLAME_USERNAME", "FLAME_PASSWORD")
    env = {"FLAME_USERNAME": "me@example.org", "FLAME_PASSWORD": "pw-from-env"}
    assert get_credentials(account, environ=env) == {"username": "me@example.org", "password": "pw-from-env"}
    asked = []
    creds = get_credentials(account, environ={}, prompt=lambda q: asked.append(q) or " me@example.org ",
                            secret_prompt=lambda q: asked.append(q) or "typed-secret")
    assert creds == {"username": "me@example.org", "password": "typed-secret"}
    assert "user name" in asked[0] and "password" in asked[1]
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # not a terminal
    with pytest.raises(DownloadError) as info:
        get_credentials(account, environ={"FLAME_USERNAME": "me@example.org"})
    assert "FLAME_USERNAME" in str(info.value) and "FLAME_PASSWORD" in str(info.value)
    assert "me@example.org" not in str(info.value)


# -------------------------------------------------------------------------------------- local archives


def test_local_now_archives_are_matched_by_content_and_installed(tmp_path):
    now = get_asset("now")
    scans = tmp_path / "validation scans (1).zip"
    scans.write_bytes(make_zip({"NoW/scans/FaMoS_1/natural_head_rotation.000001.obj": b"v 0 0 0\n"}))
    lmks = tmp_path / "lm.zip"
    lmks.write_bytes(make_zip({"scans_lmks_onlypp/FaMoS_1/natural_head_rotation.000001_picked_points.pp": b"<x/>"}))
    images = tmp_path / "NoW_Dataset.zip"
    photo = "NoW_Dataset/final_release_version/iphone_pictures/FaMoS_1/selfie/IMG_1.jpg"
    images.write_bytes(make_zip({photo: b"\xff\xd8"}))
    lists = tmp_path / "imagepathsvalidation.txt"
    lists.write_text("FaMoS_1/selfie/IMG_1.jpg\n")
    assert match_local_file(now, scans).name == "scans.tar.gz"
    assert match_local_file(now, lmks).name == "scans_lmks_onlypp.tar.gz"
    data = tmp_path / "data"
    fetch_asset("now", root=data, local_files=[scans, lmks, images, lists], log=lambda _: None)
    root = data / "NoW_Dataset" / "final_release_version"
    assert (root / "scans" / "FaMoS_1" / "natural_head_rotation.000001.obj").is_file()
    assert (root / "scans_lmks_onlypp" / "FaMoS_1").is_dir()
    assert (root / "iphone_pictures" / "FaMoS_1" / "selfie" / "IMG_1.jpg").is_file()
    assert (root / "imagepathsvalidation.txt").read_text() == "FaMoS_1/selfie/IMG_1.jpg\n"
    assert asset_status("now", data) == "present"
    assert set(read_manifest(data)["now"]) == {"scans.tar.gz", "scans_lmks_onlypp.tar.gz", "NoW_Dataset.zip",
                                              "imagepathsvalidation.txt"}


def test_landmark_embedding_structure_is_checked(tmp_path):
    html = tmp_path / "landmark_embedding.npy"
    html.write_bytes(b"<!DOCTYPE html><html>Sign in</html>")
    with pytest.raises(DownloadError, match="HTML"):
        fetch_asset("landmark-embedding", root=tmp_path / "data", local_files=[html], log=lambda _: None)
    html.write_bytes(b"PK\x03\x04 not numpy")
    with pytest.raises(DownloadError, match="expected format"):
        fetch_asset("landmark-embedding", root=tmp_path / "data", local_files=[html], log=lambda _: None)
    assert not (tmp_path / "data" / "FLAME2020").exists()
    html.write_bytes(b"\x93NUMPY\x01\x00 fake header")
    fetch_asset("landmark-embedding", root=tmp_path / "data", local_files=[html], log=lambda _: None)
    assert (tmp_path / "data" / "FLAME2020" / "landmark_embedding.npy").read_bytes().startswith(b"\x93NUMPY")
    # installed atomically (no temporary file left), with the usual permissions rather than a temp file's 0600
    assert [p.name for p in (tmp_path / "data" / "FLAME2020").iterdir()] == ["landmark_embedding.npy"]
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "data" / "FLAME2020" / "landmark_embedding.npy").stat().st_mode & 0o777 == 0o666 & ~mask


def test_changed_release_is_noticed_through_the_manifest(tmp_path):
    local = tmp_path / "landmark_embedding.npy"
    messages = []
    local.write_bytes(b"\x93NUMPY version 1")
    fetch_asset("landmark-embedding", root=tmp_path / "data", local_files=[local], log=messages.append)
    assert not any("differs" in m for m in messages)
    local.write_bytes(b"\x93NUMPY version 2")
    fetch_asset("landmark-embedding", root=tmp_path / "data", local_files=[local], log=messages.append)
    assert any("differs from the copy recorded" in m for m in messages)
    entry = read_manifest(tmp_path / "data")["landmark-embedding"]["landmark_embedding.npy"]
    assert entry["sha256"] == hashlib.sha256(b"\x93NUMPY version 2").hexdigest()


def test_unrecognised_local_file_is_refused(tmp_path):
    other = tmp_path / "holiday.zip"
    other.write_bytes(make_zip({"photo.jpg": b"x"}))
    with pytest.raises(DownloadError, match="cannot tell"):
        fetch_asset("coma", root=tmp_path / "data", local_files=[other], log=lambda _: None)


def test_synthetic_is_not_downloadable():
    with pytest.raises(ValueError, match="built locally"):
        fetch_asset("synthetic")


# --------------------------------------------------------------------------------------------- synthetic


def fake_flame(out_dir, size):
    """Stand-in for facecourse.flame.synthetic.build_synthetic_flame: writes the official file names."""
    out_dir = Path(out_dir)
    (out_dir / "generic_model.pkl").write_bytes(f"model {size}".encode())
    (out_dir / "landmark_embedding.npy").write_bytes(b"\x93NUMPY")


def fake_now(out_dir):
    out_dir = Path(out_dir) / "final_release_version"
    (out_dir / "scans" / "s1").mkdir(parents=True)
    (out_dir / "imagepathsvalidation.txt").write_text("s1/selfie/IMG_1.jpg\n")


def fake_paired(out_dir, size):
    """Stand-in for facecourse.datasets.paired_synthetic.build_paired_synthetic: its finishing file."""
    (Path(out_dir) / "meta.json").write_text(f'{{"size": "{size}"}}')


def broken_builder(out_dir, size):
    (Path(out_dir) / "half_written.pkl").write_bytes(b"...")
    raise RuntimeError("builder crashed half way")


FAKE_BUILDERS = (
    SyntheticBuilder("synthetic/flame/small", f"{__name__}:fake_flame", ("small",), "generic_model.pkl"),
    SyntheticBuilder("synthetic/flame/full", f"{__name__}:fake_flame", ("full",), "generic_model.pkl"),
    SyntheticBuilder("synthetic/NoW_Dataset", f"{__name__}:fake_now", (),
                     "final_release_version/imagepathsvalidation.txt"),
    SyntheticBuilder("synthetic/paired/ci", f"{__name__}:fake_paired", ("ci",), "meta.json"),
)


def test_build_synthetic_with_fake_builders(tmp_path):
    built = build_synthetic(tmp_path, builders=FAKE_BUILDERS, log=lambda _: None)
    assert built == [tmp_path / b.target for b in FAKE_BUILDERS]
    assert (tmp_path / "synthetic/flame/full/generic_model.pkl").read_bytes() == b"model full"
    assert (tmp_path / "synthetic/NoW_Dataset/final_release_version/imagepathsvalidation.txt").is_file()
    assert sorted(p.name for p in (tmp_path / "synthetic/flame").iterdir()) == ["full", "small"]  # no staging
    # second run: everything present, nothing rebuilt
    assert build_synthetic(tmp_path, builders=FAKE_BUILDERS, log=lambda _: None) == []
    # --force rebuilds in place
    (tmp_path / "synthetic/flame/small/generic_model.pkl").write_bytes(b"stale")
    build_synthetic(tmp_path, builders=FAKE_BUILDERS[:1], force=True, log=lambda _: None)
    assert (tmp_path / "synthetic/flame/small/generic_model.pkl").read_bytes() == b"model small"


def test_synthetic_status_uses_the_registry(tmp_path, monkeypatch):
    monkeypatch.setattr(assets_mod, "SYNTHETIC_BUILDERS", FAKE_BUILDERS)
    build_synthetic(tmp_path, builders=FAKE_BUILDERS, log=lambda _: None)
    assert asset_status("synthetic", tmp_path) == "present"


def test_failed_builder_leaves_nothing_half_written(tmp_path):
    (tmp_path / "synthetic/flame/small").mkdir(parents=True)
    (tmp_path / "synthetic/flame/small/generic_model.pkl").write_bytes(b"previous good model")
    bad = (SyntheticBuilder("synthetic/flame/small", f"{__name__}:broken_builder", ("small",), "generic_model.pkl"),)
    with pytest.raises(RuntimeError, match="half way"):
        build_synthetic(tmp_path, builders=bad, force=True, log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "synthetic/flame").iterdir()) == ["small"]
    assert sorted(p.name for p in (tmp_path / "synthetic/flame/small").iterdir()) == ["generic_model.pkl"]
    assert (tmp_path / "synthetic/flame/small/generic_model.pkl").read_bytes() == b"previous good model"


def empty_builder(out_dir):
    """A builder that returns without writing anything."""


def test_builder_that_writes_nothing_is_an_error(tmp_path):
    lazy = (SyntheticBuilder("synthetic/NoW_Dataset", f"{__name__}:empty_builder", (), "*"),)
    with pytest.raises(DownloadError, match="wrote no"):
        build_synthetic(tmp_path, builders=lazy, log=lambda _: None)
    assert not (tmp_path / "synthetic/NoW_Dataset").exists()
    assert list((tmp_path / "synthetic").iterdir()) == []


def test_cli_synthetic_uses_the_builders(tmp_path, monkeypatch):
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path))
    monkeypatch.setattr(assets_mod, "SYNTHETIC_BUILDERS", FAKE_BUILDERS)
    assert load_cli().main(["synthetic"]) == 0
    assert (tmp_path / "synthetic/flame/small/generic_model.pkl").read_bytes() == b"model small"
    (tmp_path / "synthetic/flame/small/generic_model.pkl").unlink()
    assert load_cli().main([]) == 0  # synthetic is the default asset
    assert (tmp_path / "synthetic/flame/small/generic_model.pkl").read_bytes() == b"model small"


def stale_marker(out_dir, size):
    """A `current` check: only a model whose bytes say `model <size>` is current."""
    model = out_dir / "generic_model.pkl"
    return model.is_file() and model.read_bytes() == f"model {size}".encode()


def test_stale_synthetic_part_is_rebuilt(tmp_path):
    builders = (SyntheticBuilder("synthetic/flame/small", f"{__name__}:fake_flame", ("small",), "generic_model.pkl",
                                 current=f"{__name__}:stale_marker"),)
    (tmp_path / "synthetic/flame/small").mkdir(parents=True)
    (tmp_path / "synthetic/flame/small/generic_model.pkl").write_bytes(b"made by older code")
    assert build_synthetic(tmp_path, builders=builders, log=lambda _: None) == [tmp_path / "synthetic/flame/small"]
    assert (tmp_path / "synthetic/flame/small/generic_model.pkl").read_bytes() == b"model small"
    assert build_synthetic(tmp_path, builders=builders, log=lambda _: None) == []  # now current: kept
