"""Downloads, verification and safe extraction, against a local HTTP server on 127.0.0.1 only.

The server (written here: ``http.server`` in a thread) supports ``Range`` requests, a POST login the way
the MPI download servers do it (form fields ``username``/``password``; a wrong login gets an HTML page with
status 200), and faults on demand: truncated bodies, ignored ranges, missing files.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import tarfile
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from helpers import make_zip

from facecourse.data import assets as assets_mod
from facecourse.data.assets import Account, Asset, RemoteFile, fetch_asset, read_manifest
from facecourse.data.download import (
    ChecksumError,
    DownloadError,
    IncompleteDownloadError,
    LoginPageError,
    UnsafeArchiveError,
    check_archive,
    download,
    find_root,
    install_archive,
    sha256_file,
)

USER, PASSWORD = "student@example.org", "s3cr3t-P@ss w0rd&x=1"
LOGIN_PAGE = b"<!DOCTYPE html><html><body><form action='login.php'>Please log in</form></body></html>"


class Route:
    """What the server answers for one path."""

    def __init__(self, body: bytes, *, login: bool = False, truncate_at: int | None = None,
                 truncate_times: int = 0, ignore_range: bool = False):
        self.body, self.login = body, login
        self.truncate_at, self.truncate_times = truncate_at, truncate_times
        self.ignore_range = ignore_range


class Server:
    """A threaded HTTP server on 127.0.0.1 with routes and a log of the requests it saw."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean (and prove we never need it)
                pass

            def do_GET(self):
                self._answer({})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                self._answer(form)

            def _answer(self, form):
                path = urllib.parse.urlsplit(self.path).path
                server.requests.append({"method": self.command, "path": path, "range": self.headers.get("Range"),
                                        "form": form})
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404, "Not Found")
                    return
                if route.login and (form.get("username"), form.get("password")) != (USER, PASSWORD):
                    self._send(200, LOGIN_PAGE, {"Content-Type": "text/html; charset=utf-8"})
                    return
                body, start = route.body, 0
                rng = self.headers.get("Range")
                if rng and not route.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                        return
                headers = {"Content-Type": "application/octet-stream"}
                status = 200
                if start:
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                payload = body[start:]
                cut = None
                if route.truncate_times > 0 and route.truncate_at is not None:
                    route.truncate_times -= 1
                    cut = max(route.truncate_at - start, 0)
                self._send(status, payload, headers, cut=cut)

            def _send(self, status, payload, headers, cut=None):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(payload if cut is None else payload[:cut])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    srv = Server()
    yield srv
    srv.close()


def pickled(tag: int) -> bytes:
    """A small real pickle (a dict of a numpy array, protocol 2 like FLAME's), readable by the safe loader."""
    return pickle.dumps({"tag": np.arange(3) + tag}, protocol=2)


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    """Deterministic binary data that cannot be mistaken for HTML."""
    out = bytearray()
    block = hashlib.sha256(bytes([seed])).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def make_tar(members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info in members:
            content = (data or {}).get(info.name)
            if content is not None:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------------------------- download


def test_good_file_is_verified_and_renamed(server, tmp_path):
    body = payload()
    server.routes["/good.bin"] = Route(body)
    dest = download(server.url("/good.bin"), tmp_path / "good.bin", size=len(body),
                    sha256=hashlib.sha256(body).hexdigest(), progress=True)
    assert dest.read_bytes() == body
    assert files_under(tmp_path) == ["good.bin"]  # no .part left behind


def test_sha256_file_matches_hashlib(tmp_path):
    data = payload(3 * 2**20 + 17, seed=3)  # spans several read chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert sha256_file(tmp_path / "f", chunk=1000) == hashlib.sha256(data).hexdigest()


def test_truncated_file_is_reported_and_never_placed(server, tmp_path):
    body = payload()
    server.routes["/t.bin"] = Route(body, truncate_at=100_000, truncate_times=99)
    with pytest.raises(IncompleteDownloadError, match="resume"):
        download(server.url("/t.bin"), tmp_path / "t.bin", asset="demo", progress=False)
    assert not (tmp_path / "t.bin").exists()
    assert (tmp_path / "t.bin.part").stat().st_size == 100_000


def test_interrupted_download_resumes_with_range(server, tmp_path):
    body = payload(500_000, seed=1)
    server.routes["/r.bin"] = Route(body, truncate_at=123_456, truncate_times=1)
    sha = hashlib.sha256(body).hexdigest()
    with pytest.raises(IncompleteDownloadError):
        download(server.url("/r.bin"), tmp_path / "r.bin", size=len(body), sha256=sha, progress=False)
    assert not (tmp_path / "r.bin").exists()
    dest = download(server.url("/r.bin"), tmp_path / "r.bin", size=len(body), sha256=sha, progress=False)
    assert dest.read_bytes() == body
    assert [r["range"] for r in server.requests] == [None, "bytes=123456-"]
    assert files_under(tmp_path) == ["r.bin"]


def test_resume_when_server_ignores_range_starts_over(server, tmp_path):
    body = payload(200_000, seed=2)
    server.routes["/n.bin"] = Route(body, ignore_range=True)
    (tmp_path / "n.bin.part").write_bytes(b"\x00" * 5000)  # stale partial data
    dest = download(server.url("/n.bin"), tmp_path / "n.bin", size=len(body), progress=False)
    assert dest.read_bytes() == body
    assert server.requests[0]["range"] == "bytes=5000-"


def test_complete_part_file_is_not_downloaded_again(server, tmp_path):
    body = payload(50_000, seed=4)
    server.routes["/c.bin"] = Route(body)
    (tmp_path / "c.bin.part").write_bytes(body)
    download(server.url("/c.bin"), tmp_path / "c.bin", size=len(body), progress=False)
    assert (tmp_path / "c.bin").read_bytes() == body and server.requests == []


def test_complete_part_file_without_known_size_is_confirmed_by_the_server(server, tmp_path):
    body = payload(40_000, seed=6)
    server.routes["/u.bin"] = Route(body)
    (tmp_path / "u.bin.part").write_bytes(body)  # size unknown to us: the server's 416 confirms it is whole
    assert download(server.url("/u.bin"), tmp_path / "u.bin", progress=False).read_bytes() == body
    (tmp_path / "v.bin.part").write_bytes(body + b"junk")  # longer than the file on the server
    server.routes["/v.bin"] = Route(body)
    with pytest.raises(DownloadError, match="does not fit"):
        download(server.url("/v.bin"), tmp_path / "v.bin", progress=False)
    assert not (tmp_path / "v.bin.part").exists() and not (tmp_path / "v.bin").exists()


def test_wrong_checksum_deletes_everything(server, tmp_path):
    body = payload()
    server.routes["/w.bin"] = Route(body)
    with pytest.raises(ChecksumError, match="SHA-256"):
        download(server.url("/w.bin"), tmp_path / "w.bin", asset="demo", sha256="0" * 64, progress=False)
    assert files_under(tmp_path) == []


def test_wrong_size_deletes_everything(server, tmp_path):
    body = payload()
    server.routes["/s.bin"] = Route(body)
    with pytest.raises(ChecksumError, match="bytes"):
        download(server.url("/s.bin"), tmp_path / "s.bin", size=len(body) - 10, progress=False)
    assert files_under(tmp_path) == []


def test_login_page_instead_of_archive(server, tmp_path):
    server.routes["/download.php"] = Route(make_zip({"generic_model.pkl": b"x"}), login=True)
    form = {"username": USER, "password": "wrong-password-123"}
    with pytest.raises(LoginPageError) as info:
        download(server.url("/download.php"), tmp_path / "FLAME2020.zip", asset="flame2020", form=form,
                 progress=False)
    message = str(info.value)
    assert "flame2020" in message and "password" in message.lower()
    assert "wrong-password-123" not in message and USER not in message
    assert files_under(tmp_path) == []
    # the credentials went in the POST body, not in the URL
    assert server.requests[0]["method"] == "POST" and server.requests[0]["form"]["password"] == "wrong-password-123"
    assert "password" not in server.requests[0]["path"]


def test_http_error_names_the_asset(server, tmp_path):
    with pytest.raises(DownloadError, match=r"coma: the server answered HTTP 404"):
        download(server.url("/missing.zip"), tmp_path / "m.zip", asset="coma", progress=False)
    assert files_under(tmp_path) == []


# ---------------------------------------------------------------------------------------------- archives


def test_zip_with_parent_members_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(make_zip({"ok.txt": b"fine", "../escaped.txt": b"evil"}))
    target = tmp_path / "data" / "FLAME2020"
    with pytest.raises(UnsafeArchiveError, match=r"\.\."):
        install_archive(archive, target, asset="flame2020")
    assert not (tmp_path / "data" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not target.exists()
    assert files_under(tmp_path / "data") == []  # the staging folder is gone too


@pytest.mark.parametrize("name", ["/etc/evil.txt", "a/../../evil.txt", "C:/evil.txt", "..\\evil.txt"])
def test_unsafe_member_names(tmp_path, name):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(make_zip({name: b"evil"}))
    with pytest.raises(UnsafeArchiveError):
        check_archive(archive)


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


def test_tar_symlink_outside_is_refused_inside_is_allowed(tmp_path):
    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(make_tar([_symlink("pkg/link", "../../outside")]))
    with pytest.raises(UnsafeArchiveError, match="links outside"):
        check_archive(evil)
    absolute = tmp_path / "abs.tar.gz"
    absolute.write_bytes(make_tar([_symlink("pkg/link", "/etc/passwd")]))
    with pytest.raises(UnsafeArchiveError):
        check_archive(absolute)
    good = tmp_path / "good.tar.gz"
    good.write_bytes(make_tar([tarfile.TarInfo("pkg/a.txt"), _symlink("pkg/sub/link", "../a.txt")],
                              {"pkg/a.txt": b"hello"}))
    assert check_archive(good) == ["pkg/a.txt"]
    installed = install_archive(good, tmp_path / "out", marker="a.txt")
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"hello"
    assert (tmp_path / "out" / "sub" / "link").read_bytes() == b"hello"
    assert tmp_path / "out" / "a.txt" in installed


def test_chained_tar_links_cannot_escape(tmp_path):
    archive = tmp_path / "chain.tar.gz"
    archive.write_bytes(make_tar([_symlink("b", "."), _symlink("a", "b/.."), tarfile.TarInfo("a/escaped.txt")],
                                 {"a/escaped.txt": b"evil"}))
    with pytest.raises(UnsafeArchiveError):
        install_archive(archive, tmp_path / "out" / "FLAME2020", asset="flame2020")
    assert not (tmp_path / "out" / "escaped.txt").exists() and files_under(tmp_path / "out") == []


def test_tar_device_file_is_refused(tmp_path):
    info = tarfile.TarInfo("dev")
    info.type = tarfile.CHRTYPE
    archive = tmp_path / "dev.tar.gz"
    archive.write_bytes(make_tar([info]))
    with pytest.raises(UnsafeArchiveError, match="device"):
        check_archive(archive)


def test_zip_symlink_outside_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, "../../etc/passwd")
    (tmp_path / "l.zip").write_bytes(buffer.getvalue())
    with pytest.raises(UnsafeArchiveError, match="links outside"):
        check_archive(tmp_path / "l.zip")


def _zip_with_links(links: dict[str, str], files: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, target in links.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
        for name, data in (files or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_chained_zip_links_cannot_escape(tmp_path):
    # each link looks harmless on its own; together "a" points at the parent of the target folder
    (tmp_path / "chain.zip").write_bytes(_zip_with_links({"b": ".", "a": "b/.."}))
    target = tmp_path / "out" / "FLAME2020"
    with pytest.raises(UnsafeArchiveError, match="through other links"):
        install_archive(tmp_path / "chain.zip", target, asset="flame2020")
    assert not target.exists() and files_under(tmp_path / "out") == []
    # writing a file through such a link is refused before the write happens
    (tmp_path / "write.zip").write_bytes(_zip_with_links({"b": ".", "a": "b/.."}, {"a/escaped.txt": b"evil"}))
    with pytest.raises(UnsafeArchiveError, match="written through a link"):
        install_archive(tmp_path / "write.zip", target, asset="flame2020")
    assert not (tmp_path / "out" / "escaped.txt").exists() and files_under(tmp_path / "out") == []


def test_html_saved_as_archive_is_named(tmp_path):
    (tmp_path / "x.zip").write_bytes(LOGIN_PAGE)
    with pytest.raises(DownloadError, match="HTML page"):
        install_archive(tmp_path / "x.zip", tmp_path / "out", asset="flame2020")
    assert not (tmp_path / "out").exists()


def test_find_root_skips_wrapper_folders_and_install_merges(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip({"wrap/FLAME2020/generic_model.pkl": pickled(1), "wrap/FLAME2020/male_model.pkl": pickled(2)}))
    target = tmp_path / "FLAME2020"
    target.mkdir()
    (target / "landmark_embedding.npy").write_bytes(b"keep me")
    install_archive(archive, target, marker="generic_model.pkl", expect=("generic_model.pkl", "male_model.pkl"))
    assert sorted(os.listdir(target)) == ["generic_model.pkl", "landmark_embedding.npy", "male_model.pkl"]
    assert (target / "landmark_embedding.npy").read_bytes() == b"keep me"


def test_find_root_refuses_ambiguous_layouts(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "generic_model.pkl").write_bytes(b"")
    with pytest.raises(DownloadError, match="several"):
        find_root(tmp_path, "generic_model.pkl")
    assert find_root(tmp_path / "a", "generic_model.pkl") == tmp_path / "a"


def test_missing_expected_member_installs_nothing(tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip({"generic_model.pkl": b"g"}))
    with pytest.raises(DownloadError, match="female_model.pkl"):
        install_archive(archive, tmp_path / "FLAME2020", marker="generic_model.pkl",
                        expect=("generic_model.pkl", "female_model.pkl"), asset="flame2020")
    assert files_under(tmp_path) == ["a.zip"]


# ------------------------------------------------------------------- whole assets and the command line


@pytest.fixture()
def fake_licensed_asset(server, monkeypatch):
    """A FLAME-2020-like asset served by the local server behind a login."""
    archive = make_zip({"generic_model.pkl": pickled(5), "male_model.pkl": pickled(6), "female_model.pkl": pickled(7),
                        "Readme.pdf": b"%PDF"})
    server.routes["/download.php"] = Route(archive, login=True)
    url = server.url("/download.php") + "?domain=flame&sfile=FLAME2020.zip&resume=1"
    asset = Asset("fake-flame", "fake", "test licence", "https://example.org", "1 kB", "FLAME2020/",
                  ("FLAME2020/generic_model.pkl",),
                  files=(RemoteFile("FLAME2020.zip", url, "archive", "FLAME2020", marker="generic_model.pkl",
                                    expect=("generic_model.pkl", "male_model.pkl", "female_model.pkl")),),
                  account=Account("FAKE", "https://example.org/register", "FAKE_USERNAME", "FAKE_PASSWORD"))
    monkeypatch.setitem(assets_mod.ASSETS, asset.name, asset)
    return asset, archive


def test_fetch_licensed_asset_installs_and_records_sha256(fake_licensed_asset, tmp_path):
    asset, archive = fake_licensed_asset
    installed = fetch_asset(asset.name, root=tmp_path, credentials={"username": USER, "password": PASSWORD},
                            progress=False, log=lambda _: None)
    assert (tmp_path / "FLAME2020" / "generic_model.pkl").read_bytes() == pickled(5)
    assert tmp_path / "FLAME2020" / "generic_model.pkl" in installed
    entry = read_manifest(tmp_path)[asset.name]["FLAME2020.zip"]
    assert entry["sha256"] == hashlib.sha256(archive).hexdigest() and entry["size"] == len(archive)
    assert not (tmp_path / "downloads" / "FLAME2020.zip").exists()  # archive removed after install
    manifest_text = (tmp_path / "manifest.json").read_text()
    assert PASSWORD not in manifest_text and USER not in manifest_text


def _run_cli(argv, monkeypatch, tmp_path):
    monkeypatch.setenv("FACECOURSE_DATA", str(tmp_path))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        import data_download
    finally:
        sys.path.pop(0)
    return data_download.main(argv)


def test_credentials_never_printed(fake_licensed_asset, monkeypatch, tmp_path, capsys, caplog):
    asset, _ = fake_licensed_asset
    caplog.set_level("DEBUG")
    monkeypatch.setenv("FAKE_USERNAME", USER)
    monkeypatch.setenv("FAKE_PASSWORD", "Wr0ng-" + PASSWORD)
    assert _run_cli([asset.name], monkeypatch, tmp_path) == 1  # login page -> clear error, exit 1
    out, err = capsys.readouterr()
    assert "web page instead of the file" in err and asset.name in err
    monkeypatch.setenv("FAKE_PASSWORD", PASSWORD)
    assert _run_cli([asset.name], monkeypatch, tmp_path) == 0
    out2, err2 = capsys.readouterr()
    assert (tmp_path / "FLAME2020" / "generic_model.pkl").exists()
    everything = out + err + out2 + err2 + caplog.text + "".join(p.read_text(errors="ignore")
                                                                 for p in tmp_path.rglob("*.json"))
    for secret in (PASSWORD, "Wr0ng-" + PASSWORD, urllib.parse.quote_plus(PASSWORD), USER):
        assert secret not in everything


def test_downloaded_archive_failing_its_structure_check_is_discarded(server, monkeypatch, tmp_path):
    server.routes["/download.php"] = Route(make_zip({"generic_model.pkl": b"g"}), login=True)  # no male/female
    url = server.url("/download.php") + "?sfile=FLAME2020.zip"
    asset = Asset("fake-flame", "fake", "test licence", "https://example.org", "1 kB", "FLAME2020/",
                  ("FLAME2020/generic_model.pkl",),
                  files=(RemoteFile("FLAME2020.zip", url, "archive", "FLAME2020", marker="generic_model.pkl",
                                    expect=("generic_model.pkl", "female_model.pkl")),),
                  account=Account("FAKE", "https://example.org/register", "FAKE_USERNAME", "FAKE_PASSWORD"))
    monkeypatch.setitem(assets_mod.ASSETS, asset.name, asset)
    with pytest.raises(DownloadError, match="female_model.pkl"):
        fetch_asset(asset.name, root=tmp_path, credentials={"username": USER, "password": PASSWORD},
                    progress=False, log=lambda _: None)
    assert files_under(tmp_path) == ["downloads"]  # nothing installed, nothing recorded, archive discarded


def test_local_archive_install_matches_by_content(fake_licensed_asset, tmp_path):
    asset, archive = fake_licensed_asset
    local = tmp_path / "my-download (1).zip"
    local.write_bytes(archive)
    fetch_asset(asset.name, root=tmp_path / "data", local_files=[local], log=lambda _: None)
    assert (tmp_path / "data" / "FLAME2020" / "female_model.pkl").read_bytes() == pickled(7)
    entry = read_manifest(tmp_path / "data")[asset.name]["FLAME2020.zip"]
    assert entry["sha256"] == hashlib.sha256(archive).hexdigest()
