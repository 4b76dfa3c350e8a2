"""The data assets of the course: where each comes from, its licence, where it goes, whether it is there.

One registry (:data:`ASSETS`) serves ``data_download.py``, ``facecourse doctor`` and notebook 00.

* ``synthetic`` — the embedded default, generated offline by our own code (FLAME-format model in two sizes
  and a NoW-format evaluation set). The builders are named by dotted path in :data:`SYNTHETIC_BUILDERS`
  and imported only when called.
* ``flame2020``, ``flame2023-open``, ``landmark-embedding``, ``now``, ``coma`` — the real assets, fetched
  from their official servers with the user's own account where one is needed. They keep their official
  file names and layouts under :func:`~facecourse.data.paths.data_dir` (``FLAME2020/generic_model.pkl``,
  ``NoW_Dataset/final_release_version/...``, ``COMA_data/FaceTalk_*/...``), so every loader path is the
  real one.

Licensed files have no published checksum: after download their structure is checked (the expected
members are in the archive) and their SHA-256 is recorded in ``data_dir()/manifest.json``, so a later
corruption or a silently changed release is noticed.

Credentials are read from environment variables (e.g. ``FLAME_USERNAME`` / ``FLAME_PASSWORD``) or asked
for interactively (the password with ``getpass``); there is deliberately no command-line option for them.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import importlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from facecourse.data.atomic import atomic_open, atomic_path, staging_dir
from facecourse.data.download import (
    DownloadError,
    check_archive,
    download,
    has_match,
    install_archive,
    looks_like_html,
    sha256_file,
)
from facecourse.data.paths import resolve_data_dir

MPI_DOWNLOAD = "https://download.is.tue.mpg.de/download.php?domain={domain}&sfile={name}&resume=1"
"""The MPI-IS download endpoint shared by FLAME, NoW and CoMA: a POST with ``username`` and ``password``
form fields returns the file (a wrong login returns an HTML page). Used this way by the official DECA and
MICA fetch scripts."""

MANIFEST = "manifest.json"
"""File in the data directory recording, per asset, each downloaded file's SHA-256, size, URL and date."""


@dataclass(frozen=True)
class Account:
    """A website account some assets need. Credentials come from ``env_user``/``env_password`` or a prompt."""

    site: str
    register_url: str
    env_user: str
    env_password: str


@dataclass(frozen=True)
class RemoteFile:
    """One official file of an asset.

    Attributes:
        name: official file name (kept for the download and in the manifest).
        url: where to fetch it (no credentials in it).
        kind: ``"archive"`` (zip/tar, extracted safely) or ``"file"`` (moved into place as is).
        dest: folder (relative to the data dir) receiving the archive's layout, or the file's relative path.
        marker: glob that marks the root of the layout inside the archive (None: archive top level).
        expect: relative paths/globs the layout must contain (structure check before installing).
        size: expected size in bytes, or None (unknown / licensed).
        sha256: expected SHA-256, or None (unknown / licensed: recorded in the manifest instead).
        magic: for ``kind="file"``: bytes the file must start with (structure check).
        text: for ``kind="file"``: the file must be UTF-8 text (e.g. NoW image lists).
        verified: whether the official name/URL was confirmed from public sources (else: best knowledge,
            ``--archive`` accepts a manually downloaded copy whatever its name).
        login: send the asset's account credentials with the request (False for files on a public server,
            so credentials only ever go to the server that asked for them).
    """

    name: str
    url: str
    kind: str
    dest: str
    marker: str | None = None
    expect: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    magic: bytes | None = None
    text: bool = False
    verified: bool = True
    login: bool = True


@dataclass(frozen=True)
class Asset:
    """A data asset: licence, approximate size, where it goes, how to get it and how to tell it is there.

    ``present`` lists relative paths/globs (below the data dir) that must all match for the asset to
    count as present.
    """

    name: str
    title: str
    licence: str
    licence_url: str
    size: str
    location: str
    present: tuple[str, ...]
    files: tuple[RemoteFile, ...] = ()
    account: Account | None = None
    note: str = ""


@dataclass(frozen=True)
class SyntheticBuilder:
    """A generator of part of the synthetic default: ``function(out_dir, *args)`` from ``module:function``.

    ``target`` is the folder (relative to the data dir) it fills; ``present`` a glob inside it that marks
    a finished build; ``current``, optionally, ``module:function`` called as ``function(target, *args)``
    that says whether what is there is finished *and* made by the current code (else it is rebuilt).
    """

    target: str
    function: str
    args: tuple = ()
    present: str = ""
    current: str = ""


SYNTHETIC_BUILDERS: tuple[SyntheticBuilder, ...] = (
    SyntheticBuilder("synthetic/flame/small", "facecourse.flame.synthetic:build_synthetic_flame",
                     ("small",), present="generic_model.pkl", current="facecourse.flame.synthetic:is_current"),
    SyntheticBuilder("synthetic/flame/full", "facecourse.flame.synthetic:build_synthetic_flame",
                     ("full",), present="generic_model.pkl", current="facecourse.flame.synthetic:is_current"),
    SyntheticBuilder("synthetic/NoW_Dataset", "facecourse.now.synthetic:build_synthetic_now", (),
                     present="final_release_version/imagepathsvalidation.txt",
                     current="facecourse.now.synthetic:is_current"),
    SyntheticBuilder("synthetic/paired/ci", "facecourse.datasets.paired_synthetic:build_paired_synthetic", ("ci",),
                     present="meta.json", current="facecourse.datasets.paired_synthetic:is_current"),
)
"""What ``data_download.py synthetic`` builds, in order (the NoW set and the CI paired set are made from synthetic
FLAME heads; the full paired set is built on first use, :func:`facecourse.datasets.paired_synthetic.paired_synthetic_dir`)."""

FLAME_ACCOUNT = Account("FLAME", "https://flame.is.tue.mpg.de/", "FLAME_USERNAME", "FLAME_PASSWORD")
NOW_ACCOUNT = Account("NoW", "https://now.is.tue.mpg.de/", "NOW_USERNAME", "NOW_PASSWORD")
COMA_ACCOUNT = Account("CoMA", "https://coma.is.tue.mpg.de/", "COMA_USERNAME", "COMA_PASSWORD")

NOW_ROOT = "NoW_Dataset/final_release_version"
"""The NoW dataset folder, as :mod:`facecourse.now.layout` reads it (``DATASET_SUBDIR``) and as the official
image archive unpacks: image lists, ``iphone_pictures/``, ``detected_face/``, ``scans/`` and
``scans_lmks_onlypp/`` side by side."""


def _now_file(name: str, marker: str | None, kind: str = "archive") -> RemoteFile:
    dest = NOW_ROOT if kind == "archive" else f"{NOW_ROOT}/{name}"
    return RemoteFile(name, MPI_DOWNLOAD.format(domain="now", name=name), kind, dest, marker=marker,
                      expect=(marker,) if marker else (), text=kind == "file", verified=False)


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset(
            "synthetic",
            "Synthetic embedded default: FLAME-format head model (small, full) + NoW-format scans",
            "MIT (generated offline by facecourse; contains no real person)",
            "https://opensource.org/license/mit",
            "about 80 MB on disk, built locally in under a minute",
            "synthetic/",
            tuple(f"{b.target}/{b.present}" for b in SYNTHETIC_BUILDERS),
            note="offline; `make data` runs it",
        ),
        Asset(
            "flame2020",
            "FLAME 2020 head model (generic/female/male) + FLAME vertex masks",
            "FLAME model licence: non-commercial scientific research; registration required",
            "https://flame.is.tue.mpg.de/modellicense.html",
            "about 150 MB download",
            "FLAME2020/",
            ("FLAME2020/generic_model.pkl",),
            files=(
                RemoteFile("FLAME2020.zip", MPI_DOWNLOAD.format(domain="flame", name="FLAME2020.zip"), "archive",
                           "FLAME2020", marker="generic_model.pkl",
                           expect=("generic_model.pkl", "male_model.pkl", "female_model.pkl")),
                RemoteFile("FLAME_masks.zip", "https://files.is.tue.mpg.de/tbolkart/FLAME/FLAME_masks.zip",
                           "archive", "FLAME2020", marker="FLAME_masks.pkl", expect=("FLAME_masks.pkl",), login=False),
            ),
            account=FLAME_ACCOUNT,
        ),
        Asset(
            "flame2023-open",
            "FLAME 2023 Open head model (revised eye region)",
            "CC-BY-4.0 (attribution); registration required to download",
            "https://flame.is.tue.mpg.de/modellicense.html",
            "about 50 MB download",
            "FLAME2023Open/",
            ("FLAME2023Open/flame2023_Open.pkl",),
            files=(
                RemoteFile("FLAME2023Open.zip", MPI_DOWNLOAD.format(domain="flame", name="FLAME2023Open.zip"),
                           "archive", "FLAME2023Open", marker="flame2023_Open.pkl", expect=("flame2023_Open.pkl",)),
            ),
            account=FLAME_ACCOUNT,
        ),
        Asset(
            "landmark-embedding",
            "DECA landmark embedding (68 iBUG landmarks with dynamic contour) for the FLAME topology",
            "DECA licence: non-commercial scientific research",
            "https://github.com/yfeng95/DECA/blob/master/LICENSE",
            "under 1 MB",
            "FLAME2020/landmark_embedding.npy",
            ("FLAME2020/landmark_embedding.npy",),
            files=(
                RemoteFile("landmark_embedding.npy",
                           "https://github.com/yfeng95/DECA/raw/master/data/landmark_embedding.npy", "file",
                           "FLAME2020/landmark_embedding.npy", magic=b"\x93NUMPY"),
            ),
            note="no account; stored beside the FLAME 2020 pickle, where the loader looks",
        ),
        Asset(
            "now",
            "NoW benchmark: validation scans, their 7 landmarks, images, face boxes and image lists",
            "NoW dataset licence: non-commercial scientific research; registration required",
            "https://now.is.tue.mpg.de/license.html",
            "several GB (images); scans and landmarks of the 20 validation subjects are a small part",
            f"{NOW_ROOT}/",
            (f"{NOW_ROOT}/imagepathsvalidation.txt", f"{NOW_ROOT}/scans/*", f"{NOW_ROOT}/scans_lmks_onlypp/*",
             f"{NOW_ROOT}/iphone_pictures"),
            files=(
                _now_file("imagepathsvalidation.txt", None, kind="file"),
                _now_file("imagepathstest.txt", None, kind="file"),
                _now_file("NoW_Dataset.zip", "iphone_pictures"),
                _now_file("scans.tar.gz", "scans"),
                _now_file("scans_lmks_onlypp.tar.gz", "scans_lmks_onlypp"),
            ),
            account=NOW_ACCOUNT,
            note="archive names on the NoW download page are not confirmed: if a download fails, get the files "
                 "from https://now.is.tue.mpg.de/download.php and run `python data_download.py now --archive FILE...`",
        ),
        Asset(
            "coma",
            "CoMA registered meshes: 12 subjects x 12 extreme expressions on the FLAME topology (20,466 meshes)",
            "CoMA dataset licence: non-commercial scientific research; registration required",
            "https://coma.is.tue.mpg.de/",
            "about 3 GB download",
            "COMA_data/",
            ("COMA_data/FaceTalk_*",),
            files=(
                RemoteFile("COMA_data.zip", MPI_DOWNLOAD.format(domain="coma", name="COMA_data.zip"), "archive",
                           "COMA_data", marker="FaceTalk_*", expect=("FaceTalk_*/*/*.ply",), verified=False),
            ),
            account=COMA_ACCOUNT,
            note="COMA_data.zip is the official name (as PyG's CoMA loader expects it); the download URL is not "
                 "confirmed: if it fails, download it on the website and use --archive",
        ),
    )
}
"""Every asset ``data_download.py`` knows, by name."""


def get_asset(name: str) -> Asset:
    """The asset called ``name``; a clear error listing the valid names otherwise."""
    try:
        return ASSETS[name]
    except KeyError:
        raise ValueError(f"unknown asset {name!r}; choose one of {', '.join(ASSETS)}") from None


def asset_status(name: str, root: str | os.PathLike | None = None) -> str:
    """``"present"`` (every marker path exists), ``"partial"`` (some do) or ``"missing"``."""
    root = resolve_data_dir(root)
    asset = get_asset(name)
    hits = [has_match(root, p) for p in asset.present]
    return "present" if all(hits) else "partial" if any(hits) else "missing"


# ------------------------------------------------------------------------------------------------ manifest


def read_manifest(root: str | os.PathLike | None = None) -> dict:
    """The manifest (``{asset: {file name: {sha256, size, url, date}}}``); empty when there is none."""
    path = resolve_data_dir(root) / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def record_in_manifest(asset: str, remote: RemoteFile, path: Path, root: Path) -> dict:
    """Record ``path``'s SHA-256 and size under ``asset``/``remote.name`` (written atomically); return it."""
    entry = {
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "url": remote.url,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest = read_manifest(root)
    manifest.setdefault(asset, {})[remote.name] = entry
    with atomic_open(root / MANIFEST, "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
    return entry


# --------------------------------------------------------------------------------------------- credentials


def get_credentials(account: Account, *, environ: Mapping[str, str] | None = None,
                    prompt: Callable[[str], str] | None = None,
                    secret_prompt: Callable[[str], str] | None = None) -> dict[str, str]:
    """The ``{"username": ..., "password": ...}`` form for ``account``: environment first, else a prompt.

    The password prompt uses :func:`getpass.getpass` (nothing echoed). Without a terminal and without
    the variables set, raises :class:`DownloadError` naming the variables to set; values are never shown.
    """
    environ = os.environ if environ is None else environ
    user, password = environ.get(account.env_user, ""), environ.get(account.env_password, "")
    interactive = sys.stdin is not None and sys.stdin.isatty()
    if (not user or not password) and prompt is None and not interactive:
        raise DownloadError(
            f"{account.site} credentials needed: set {account.env_user} and {account.env_password} in the "
            f"environment (or run in a terminal to be asked). No account yet? Register at {account.register_url}"
        )
    if not user:
        user = (prompt or input)(f"{account.site} user name (e-mail): ").strip()
    if not password:
        password = (secret_prompt or getpass.getpass)(f"{account.site} password: ")
    return {"username": user, "password": password}


# ---------------------------------------------------------------------------------------------- fetching


def _install_file(remote: RemoteFile, downloaded: Path, root: Path, asset: str) -> list[Path]:
    """Structure-check a single file (``magic`` bytes, not an HTML page) and move it into place."""
    with open(downloaded, "rb") as handle:
        head = handle.read(4096)
    if looks_like_html(head):
        raise DownloadError(f"{asset}: {remote.name} is an HTML page, not the data file; check the credentials.")
    if remote.magic is not None and not head.startswith(remote.magic):
        raise DownloadError(f"{asset}: {remote.name} does not start like the expected format; download it again.")
    if remote.text:
        try:
            downloaded.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DownloadError(f"{asset}: {remote.name} is not a text file; download it again.") from None
    dest = root / remote.dest
    with atomic_path(dest) as tmp:
        shutil.copyfile(downloaded, tmp)
    return [dest]


def install_file(asset: Asset, remote: RemoteFile, downloaded: Path, root: Path,
                 log: Callable[[str], None] = print) -> list[Path]:
    """Verify ``downloaded`` (an official file of ``asset``), install it under ``root``, record its hash.

    When the manifest already holds a different SHA-256 for this file, ``log`` says so: the release
    changed (or the earlier copy was damaged) since it was first recorded.
    """
    if remote.kind == "archive":
        installed = install_archive(downloaded, root / remote.dest, marker=remote.marker, expect=remote.expect,
                                    asset=asset.name)
    else:
        installed = _install_file(remote, downloaded, root, asset.name)
    previous = read_manifest(root).get(asset.name, {}).get(remote.name)
    entry = record_in_manifest(asset.name, remote, downloaded, root)
    if previous and previous["sha256"] != entry["sha256"]:
        log(f"{asset.name}: note: {remote.name} differs from the copy recorded on {previous['date']} "
            f"(SHA-256 {previous['sha256'][:12]}... -> {entry['sha256'][:12]}...)")
    return installed


def match_local_file(asset: Asset, path: Path) -> RemoteFile:
    """Which official file of ``asset`` a manually downloaded ``path`` is: by name, else by content."""
    for remote in asset.files:
        if remote.name == path.name:
            return remote
    archives = [r for r in asset.files if r.kind == "archive" and r.marker]
    if archives:
        try:
            members = check_archive(path)
        except DownloadError:
            members = []
        for remote in archives:
            if any(_glob_in(m, remote.marker) for m in members):
                return remote
    raise DownloadError(f"{asset.name}: cannot tell which official file {path.name} is; "
                        f"expected one of {[r.name for r in asset.files]}")


def _glob_in(member: str, marker: str) -> bool:
    """True when some run of consecutive folders/names of ``member`` matches the glob ``marker``."""
    from fnmatch import fnmatch

    parts, k = member.split("/"), marker.count("/") + 1
    return any(fnmatch("/".join(parts[i:i + k]), marker) for i in range(len(parts) - k + 1))


def fetch_asset(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    credentials: Mapping[str, str] | None = None,
    local_files: list[str | os.PathLike] | None = None,
    progress: bool = True,
    keep_downloads: bool = False,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Download (or take from ``local_files``), verify and install the real asset ``name``.

    Archives are kept under ``root/downloads/`` while in transit (``.part`` files resume there) and
    deleted after a successful install unless ``keep_downloads``. ``credentials`` (a ``username``/
    ``password`` form) are asked for with :func:`get_credentials` when the asset needs an account and
    none are given. Messages go to ``log``; they never contain credentials.

    Returns:
        The installed files' paths.
    """
    asset = get_asset(name)
    if not asset.files:
        raise ValueError(f"{name!r} is built locally, not downloaded; run `python data_download.py {name}`")
    root = resolve_data_dir(root)
    installed: list[Path] = []
    if local_files:
        for local in map(Path, local_files):
            if not local.is_file():
                raise DownloadError(f"{name}: {local} is not a file")
            remote = match_local_file(asset, local)
            log(f"{name}: installing {local.name} as {remote.name}")
            installed += install_file(asset, remote, local, root, log)
        return installed
    form = None
    if asset.account is not None:
        form = dict(credentials) if credentials is not None else get_credentials(asset.account)
    downloads = root / "downloads"
    for remote in asset.files:
        log(f"{name}: downloading {remote.name}")
        target = downloads / remote.name
        try:
            path = download(remote.url, target, asset=name, size=remote.size, sha256=remote.sha256,
                            form=form if remote.login else None, progress=progress)
        except DownloadError as err:
            if not remote.verified:
                raise type(err)(f"{err} (The address of {remote.name} is not confirmed; download it by hand from "
                                f"{asset.account.register_url if asset.account else remote.url} and run "
                                f"`python data_download.py {name} --archive FILE`.)") from None
            raise
        try:
            installed += install_file(asset, remote, path, root, log)
        except DownloadError:
            path.unlink(missing_ok=True)  # a download that fails its checks is useless: fetch afresh next time
            raise
        if not keep_downloads:
            path.unlink(missing_ok=True)
    log(f"{name}: installed into {root / asset.location}")
    return installed


# --------------------------------------------------------------------------------------------- synthetic


def resolve_builder(dotted: str) -> Callable:
    """Import ``"package.module:function"`` and return the function (a clear error if it is not there)."""
    module_name, _, function = dotted.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise DownloadError(f"synthetic: the builder module {module_name} is not available ({err})") from None
    try:
        return getattr(module, function)
    except AttributeError:
        raise DownloadError(f"synthetic: {module_name} has no function {function}") from None


def _is_built(target: Path, builder: SyntheticBuilder) -> bool:
    if builder.current:
        return bool(resolve_builder(builder.current)(target, *builder.args))
    return bool(builder.present) and has_match(target, builder.present)


def build_synthetic(
    root: str | os.PathLike | None = None,
    *,
    force: bool = False,
    builders: tuple[SyntheticBuilder, ...] | None = None,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Build the synthetic embedded default (offline) under ``root/synthetic``; return the built folders.

    Each builder writes into a fresh staging folder beside its target; the staging folder replaces the
    target only when the builder returned without error, so an interrupted build leaves nothing
    half-written. Parts already present are kept unless ``force``. ``builders`` defaults to
    :data:`SYNTHETIC_BUILDERS`.
    """
    root = resolve_data_dir(root)
    builders = SYNTHETIC_BUILDERS if builders is None else builders
    built = []
    for builder in builders:
        target = root / builder.target
        if not force and _is_built(target, builder):
            log(f"synthetic: {builder.target} already present")
            continue
        function = resolve_builder(builder.function)
        log(f"synthetic: building {builder.target} with {builder.function}")
        with staging_dir(target) as staging:
            function(staging, *builder.args)
            if builder.present and not has_match(staging, builder.present):
                raise DownloadError(f"synthetic: {builder.function} wrote no {builder.present} into its folder")
            old = target.with_name(f".{target.name}.old")
            if target.exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        built.append(target)
    return built


def describe_assets(root: str | os.PathLike | None = None) -> list[dict[str, str]]:
    """One row per asset: name, title, licence, size, location (absolute), status, account variables."""
    root = resolve_data_dir(root)
    rows = []
    for asset in ASSETS.values():
        rows.append({
            "name": asset.name,
            "title": asset.title,
            "licence": asset.licence,
            "licence_url": asset.licence_url,
            "size": asset.size,
            "location": str(root / asset.location),
            "status": asset_status(asset.name, root),
            "account": (f"{asset.account.site} account: {asset.account.env_user} / {asset.account.env_password}"
                        if asset.account else "none"),
            "note": asset.note,
        })
    return rows
