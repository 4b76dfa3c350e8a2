"""Downloading and unpacking untrusted files safely: resumable, verified, atomic.

The building blocks ``data_download.py`` uses for the licensed assets (and any later chapter may reuse):

* :func:`download` streams a URL to ``<dest>.part`` with a ``tqdm.auto`` progress bar, resumes an
  interrupted transfer with an HTTP ``Range`` request, refuses an HTML page served instead of the file
  (what the MPI download servers send for a wrong user name or password), checks size and SHA-256 when
  they are known, and only then renames ``.part`` to ``dest``.
* :func:`check_archive` lists a zip or tar archive and refuses any member that would land outside the
  target folder (absolute paths, ``..`` components, links pointing outside, device files), before a single
  byte is extracted.
* :func:`install_archive` extracts into a staging folder beside the target, checks that the files the asset
  needs are there and that each opens with the project's safe reader (:func:`facecourse.data.safe_load.check_file_content`),
  completes the staged folder with the files already installed, and swaps the whole folder into place (the
  old one is kept until the new one is there).

Whatever step fails, no half-written file is left at a final path: partial downloads stay ``.part`` files
(that is what makes resuming possible) and staging folders are removed.

Credentials, when an asset needs them, travel only in the body of a POST request; they never appear in a
URL, a log line, a progress bar or an error message (:func:`redact` is applied to every message built
from server output as a second line of defence).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import shutil
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

from facecourse.data.atomic import staging_dir
from facecourse.data.safe_load import check_file_content
from facecourse.settings import progress_bar

CHUNK = 1 << 20
"""Bytes read per step when streaming or hashing (1 MiB)."""

USER_AGENT = "facecourse-data-download/0.1"


class DownloadError(RuntimeError):
    """A download, verification or extraction step failed; the message names the asset and the fix."""


class LoginPageError(DownloadError):
    """The server answered with an HTML page (login form or error page) instead of the file."""


class IncompleteDownloadError(DownloadError):
    """The connection ended before the whole file arrived; the ``.part`` file is kept for resuming."""


class ChecksumError(DownloadError):
    """The downloaded file has the wrong size or SHA-256; it has been deleted."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the target folder (or is a link/device file)."""


def sha256_file(path: str | os.PathLike, chunk: int = CHUNK) -> str:
    """Return the SHA-256 digest of a file as 64 lowercase hex characters.

    The file is read in chunks of ``chunk`` bytes, so any size works in constant memory.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every non-empty secret (and its URL-encoded form) in ``text`` by ``***``."""
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, urllib.parse.quote_plus(secret), urllib.parse.quote(secret, safe="")}:
            text = text.replace(form, "***")
    return text


def looks_like_html(head: bytes) -> bool:
    """True when the first bytes of a response are an HTML document rather than binary/archive data."""
    start = head.lstrip()[:512].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")) or b"<html" in start


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _open(url: str, form: Mapping[str, str] | None, offset: int, timeout: float):
    """Open ``url`` (GET, or POST with the url-encoded ``form``), asking for bytes from ``offset`` on."""
    data = urllib.parse.urlencode(dict(form)).encode() if form else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("User-Agent", USER_AGENT)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    asset: str = "file",
    size: int | None = None,
    sha256: str | None = None,
    form: Mapping[str, str] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest``; resume a previous ``dest.part``; verify; rename into place.

    Args:
        url: http(s) URL of the file. It must not carry credentials.
        dest: final path. Nothing is written there unless the whole file arrived and verified.
        asset: asset name used in error messages (e.g. ``"flame2020"``).
        size: expected size in bytes, or None if unknown.
        sha256: expected SHA-256 hex digest, or None if unknown (licensed files: recorded afterwards).
        form: form fields sent as a POST body (the MPI servers take ``username``/``password`` this way).
        progress: show a ``tqdm.auto`` progress bar.
        timeout: socket timeout in seconds.

    Returns:
        ``dest`` as a Path.

    Raises:
        LoginPageError: the server sent an HTML page (wrong credentials or licence not accepted).
        IncompleteDownloadError: the transfer stopped early; run again to resume from ``dest.part``.
        ChecksumError: size or SHA-256 differ from the expected ones (``.part`` deleted).
        DownloadError: HTTP or network error, with the status and what to do.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    secrets = list(form.values()) if form else []
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:  # garbage from another file: start again
        part.unlink()
        offset = 0

    if size is None or offset < size:
        try:
            response = _open(url, form, offset, timeout)
        except urllib.error.HTTPError as err:
            total = _content_range_total(err.headers.get("Content-Range", "")) if err.code == 416 else None
            if err.code == 416 and offset and total == offset:  # nothing left to send: the .part is whole
                response = None
            elif err.code == 416 and offset:
                part.unlink()
                raise DownloadError(f"{asset}: the partial download {part.name} does not fit the file on the server "
                                    "(it changed?); it was deleted, run the same command again.") from None
            else:
                hint = "check your user name/password and that you accepted the licence on the website"
                hint = hint if err.code in (401, 403) else "check the address or try again later"
                raise DownloadError(
                    redact(f"{asset}: the server answered HTTP {err.code} {err.reason} for {url}; {hint}.", secrets)
                ) from None
        except (urllib.error.URLError, OSError) as err:
            raise DownloadError(
                redact(f"{asset}: cannot reach {url} ({err}); check the network connection and try again.", secrets)
            ) from None
        if response is not None:
            _stream(response, part, asset=asset, offset=offset, size=size, progress=progress)

    got = part.stat().st_size
    if size is not None and got != size:
        if got < size:
            raise IncompleteDownloadError(
                f"{asset}: {dest.name} is incomplete ({got} of {size} bytes); run the same command again to resume."
            )
        part.unlink()
        raise ChecksumError(
            f"{asset}: {dest.name} has {got} bytes, expected {size}; the download was deleted, try again."
        )
    if sha256 is not None:
        actual = sha256_file(part)
        if actual != sha256.lower():
            part.unlink()
            raise ChecksumError(
                f"{asset}: {dest.name} has SHA-256 {actual}, expected {sha256.lower()}; the file was deleted. "
                "Run again; if it persists the file on the server changed, please report it."
            )
    os.replace(part, dest)
    return dest


def _stream(response, part: Path, *, asset: str, offset: int, size: int | None, progress: bool) -> None:
    """Append (206) or write from scratch (200) the response body to ``part``."""

    with response:
        status = getattr(response, "status", 200)
        content_type = response.headers.get("Content-Type", "")
        if status == 206:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                raise DownloadError(
                    f"{asset}: the server resumed at byte {start}, expected {offset}; delete {part} and retry."
                )
        else:  # 200: the server ignores Range; start again
            offset = 0
        length = response.headers.get("Content-Length")
        expected_total = offset + int(length) if length is not None else size
        first = response.read(min(CHUNK, 65536))
        if "text/html" in content_type.lower() or looks_like_html(first):
            raise LoginPageError(
                f"{asset}: the server sent a web page instead of the file {part.name[:-5]} — usually a login page: "
                "the user name or password is wrong, or the licence has not been accepted on the website yet. "
                "Check the credentials (they are read from the environment or asked for, never from the command line)."
            )
        mode = "ab" if offset else "wb"
        received = offset
        with open(part, mode) as handle, progress_bar(
            total=expected_total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=f"{asset}: {part.name[:-5]}", disable=not progress, leave=False,
        ) as bar:
            block = first
            try:
                while block:
                    handle.write(block)
                    received += len(block)
                    bar.update(len(block))
                    block = response.read(CHUNK)
            except (OSError, http.client.HTTPException) as err:
                raise IncompleteDownloadError(
                    f"{asset}: the connection broke after {received} bytes ({type(err).__name__}); "
                    "run the same command again to resume."
                ) from None
        if expected_total is not None and received < expected_total:
            raise IncompleteDownloadError(
                f"{asset}: the connection ended after {received} of {expected_total} bytes; "
                "run the same command again to resume."
            )


def _content_range_total(header: str) -> int | None:
    """Total size of a ``Content-Range: bytes .../TOTAL`` header (None if absent or ``*``)."""
    total = header.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _content_range_start(header: str) -> int | None:
    """First byte position of a ``Content-Range: bytes START-END/TOTAL`` header (None if unparsable)."""
    try:
        unit, _, spec = header.strip().partition(" ")
        return int(spec.split("-", 1)[0]) if unit == "bytes" else None
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------------- archives


def archive_kind(path: str | os.PathLike) -> str:
    """``"zip"`` or ``"tar"`` (any compression tarfile reads), from the file's content, not its name.

    Raises:
        DownloadError: the file is neither (e.g. an HTML page saved under an archive name).
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    with open(path, "rb") as handle:
        head = handle.read(4096)
    what = "an HTML page (a login or error page?)" if looks_like_html(head) else "not a zip or tar archive"
    raise DownloadError(f"{path.name} is {what}; delete it and download again.")


def _member_parts(name: str) -> tuple[str, ...]:
    """Split an archive member name into safe relative path parts, or raise UnsafeArchiveError."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
    parts = tuple(p for p in PurePosixPath(posix).parts if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {name!r} climbs out of the target folder ('..')")
    return parts


def _link_stays_inside(member_parts: tuple[str, ...], link_target: str) -> bool:
    """True when a symbolic link at ``member_parts`` pointing to ``link_target`` resolves inside the root."""
    if link_target.startswith("/") or (len(link_target) > 1 and link_target[1] == ":"):
        return False
    depth = len(member_parts) - 1  # folders above the link inside the root
    for part in PurePosixPath(link_target.replace("\\", "/")).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


def check_archive(path: str | os.PathLike) -> list[str]:
    """Validate every member of a zip/tar archive without extracting; return the regular files' names.

    Refused (:class:`UnsafeArchiveError`): absolute paths, drive letters, ``..`` components, symbolic or
    hard links whose target resolves outside the archive root, device files and FIFOs. Symbolic links
    that stay inside are allowed.
    """
    path = Path(path)
    files: list[str] = []
    if archive_kind(path) == "zip":
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                parts = _member_parts(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    target = archive.read(info).decode("utf-8", "replace")
                    if not _link_stays_inside(parts, target):
                        raise UnsafeArchiveError(f"archive member {info.filename!r} links outside: {target!r}")
                elif not info.is_dir() and parts:
                    files.append("/".join(parts))
        return files
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            parts = _member_parts(member.name)
            if member.issym():
                if not _link_stays_inside(parts, member.linkname):
                    raise UnsafeArchiveError(f"archive member {member.name!r} links outside: {member.linkname!r}")
            elif member.islnk():
                _member_parts(member.linkname)  # hard links name a path from the archive root
            elif member.isfile():
                files.append("/".join(parts))
            elif not member.isdir():
                raise UnsafeArchiveError(f"archive member {member.name!r} is a device file or FIFO")
    return files


def _inside(path: Path, root: Path) -> bool:
    """True when ``path``, with every symbolic link resolved, lies in ``root`` (already resolved)."""
    return path.resolve() == root or root in path.resolve().parents


def safe_extract(path: str | os.PathLike, target: str | os.PathLike) -> list[str]:
    """Extract a zip/tar archive into ``target`` after :func:`check_archive` accepted every member.

    Returns the extracted regular files' relative names. Tar archives are extracted with tarfile's
    ``"data"`` filter on top of our own check. Zip members are written one by one; since links inside the
    archive could chain (``b -> .``, then ``a -> b/..``), every write is checked against the *resolved*
    target folder, and so is every link once all members are out.

    Raises:
        UnsafeArchiveError: a member or link resolves outside ``target``.
    """
    path, target = Path(path), Path(target)
    files = check_archive(path)
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    if archive_kind(path) == "tar":
        with tarfile.open(path) as archive:
            try:
                archive.extractall(target, filter="data")
            except tarfile.FilterError as err:  # e.g. links that escape only once chained
                raise UnsafeArchiveError(f"archive member refused: {err}") from None
        return files
    links = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            parts = _member_parts(info.filename)
            if not parts:
                continue
            out = target.joinpath(*parts)
            if not _inside(out.parent, root):
                raise UnsafeArchiveError(f"archive member {info.filename!r} would be written through a link outside")
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(info.external_attr >> 16):
                os.symlink(archive.read(info).decode("utf-8"), out)
                links.append((info.filename, out))
                continue
            with archive.open(info) as source, open(out, "wb") as sink:
                shutil.copyfileobj(source, sink, CHUNK)
    for name, link in links:
        if not _inside(link, root):
            raise UnsafeArchiveError(f"archive member {name!r} links outside the target folder (through other links)")
    return files


def has_match(folder: Path, pattern: str) -> bool:
    """True when the relative path or glob ``pattern`` matches at least one path below ``folder``."""
    return next(folder.glob(pattern), None) is not None


def find_root(folder: str | os.PathLike, marker: str) -> Path:
    """The shallowest folder inside ``folder`` (itself included) holding a match of the glob ``marker``.

    Archives differ in how many wrapper folders they add; the asset registry names one file or folder
    its layout must contain (e.g. ``"generic_model.pkl"``) and this finds where that layout starts.

    Raises:
        DownloadError: ``marker`` is nowhere, or at the same shallowest depth in several folders.
    """
    folder = Path(folder)
    candidates = [folder] + sorted(p for p in folder.rglob("*") if p.is_dir() and not p.is_symlink())
    roots = [d for d in candidates if has_match(d, marker)]
    if not roots:
        raise DownloadError(f"the archive does not contain {marker!r}")
    depth = min(len(r.relative_to(folder).parts) for r in roots)
    shallowest = [r for r in roots if len(r.relative_to(folder).parts) == depth]
    if len(shallowest) > 1:
        names = [str(r.relative_to(folder)) for r in shallowest]
        raise DownloadError(f"the archive contains {marker!r} in several folders: {names}")
    return shallowest[0]


def merge_into_staging(new_root: str | os.PathLike, target: str | os.PathLike) -> None:
    """Complete the staged folder ``new_root`` with every file of the existing folder ``target`` that the new one
    does not replace (hard links, or copies across devices), so that ``new_root`` becomes the whole new folder.

    Raises:
        DownloadError: a file of one would replace a folder of the other (a name collision), found before
            anything at ``target`` changes.
    """
    new_root, target = Path(new_root), Path(target)
    for item in sorted(target.rglob("*")):
        out = new_root / item.relative_to(target)
        if item.is_dir() and not item.is_symlink():
            if out.exists() and not out.is_dir():
                raise DownloadError(f"cannot replace folder {item} by a file")
            continue
        if out.is_dir() and not out.is_symlink():
            raise DownloadError(f"cannot replace file {item} by a folder")
        if out.exists() or out.is_symlink():
            continue  # the new release's file wins
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(item, out, follow_symlinks=False)
        except OSError:
            shutil.copy2(item, out, follow_symlinks=False)


def swap_into_place(new_root: str | os.PathLike, target: str | os.PathLike) -> None:
    """Replace folder ``target`` by the complete folder ``new_root`` (same file system): the old folder is renamed
    aside, the new one renamed into place, and only then is the old one deleted (it is put back if the second
    rename fails). A fresh ``target`` is a single rename."""
    new_root, target = Path(new_root), Path(target)
    if not target.exists():
        os.replace(new_root, target)
        return
    backup = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(backup, ignore_errors=True)
    os.replace(target, backup)
    try:
        os.replace(new_root, target)
    except OSError:
        os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def install_archive(
    archive: str | os.PathLike,
    target: str | os.PathLike,
    *,
    marker: str | None = None,
    expect: Iterable[str] = (),
    asset: str = "archive",
) -> list[Path]:
    """Extract ``archive`` safely and move its layout into ``target``; nothing partial is left behind.

    Steps: :func:`safe_extract` into a staging folder created beside ``target`` (same file system);
    locate the layout with :func:`find_root` on ``marker`` (or use the staging folder itself); check that
    every relative path in ``expect`` exists there and that each expected file opens with the project's safe
    reader (:func:`~facecourse.data.safe_load.check_file_content`: a text file named ``generic_model.pkl`` is
    refused here, naming it); complete the staged folder with the files already at ``target``
    (:func:`merge_into_staging`, which also finds name collisions) and swap it in (:func:`swap_into_place`).
    Nothing at ``target`` changes before every check has passed; the staging folder is removed whatever happens.

    Args:
        archive: zip or tar file (its content decides which).
        target: folder receiving the files, e.g. ``data_dir() / "FLAME2020"``.
        marker: relative path or glob (e.g. ``"FaceTalk_*"``) marking the root of the layout inside the
            archive; None: the archive's top level is the layout.
        expect: relative paths or globs (below that root) the asset must contain, checked before
            anything moves.
        asset: asset name for error messages.

    Returns:
        The final paths of the installed files.
    """
    target = Path(target)
    with staging_dir(target) as staging:
        try:
            safe_extract(archive, staging)
            root = find_root(staging, marker) if marker else staging
        except DownloadError as err:
            raise type(err)(f"{asset}: {Path(archive).name}: {err}") from None
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as err:
            raise DownloadError(
                f"{asset}: {Path(archive).name} is damaged ({err}); delete it and download again."
            ) from None
        missing = [e for e in expect if not has_match(root, e)]
        if missing:
            raise DownloadError(
                f"{asset}: {Path(archive).name} lacks {missing}; it is not the expected release. "
                "Download it again from the official page."
            )
        for pattern in expect:  # every expected file is opened with the project's safe reader first
            for path in sorted(root.glob(pattern)):
                if path.is_file():
                    try:
                        check_file_content(path)
                    except (ValueError, pickle.UnpicklingError) as err:
                        raise DownloadError(f"{asset}: {Path(archive).name}: {err}; it is not the expected "
                                            "release, nothing was installed") from None
        installed = sorted(p.relative_to(root) for p in root.rglob("*") if not p.is_dir())
        if target.exists():
            merge_into_staging(root, target)
        swap_into_place(root, target)
        return [target / p for p in installed]
