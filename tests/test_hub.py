"""Downloads against a local HTTP server on 127.0.0.1 (no internet needed)."""

import hashlib
import http.server
import threading
import time
from functools import partial

import pytest

from spikeclip_lite import hub


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            hits.append(self.path)
            if self.path == "/truncated.bin":  # promise 100 bytes, send 10, hang up
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                self.wfile.write(b"x" * 10)
                return
            if self.path == "/login.html":  # an error page where the file should be
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(b"<html>please sign in</html>")
                return
            if self.path == "/chunked.bin":  # chunked body cut in the middle of a chunk
                self.protocol_version = "HTTP/1.1"
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"64\r\n" + b"y" * 20)  # announces 100 bytes, sends 20
                self.wfile.flush()
                self.close_connection = True
                return
            if self.path == "/trickle.bin":  # one byte at a time, forever (bounded: 200 bytes)
                self.send_response(200)
                self.end_headers()
                for _ in range(200):
                    try:
                        self.wfile.write(b"z")
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.02)
                return
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root, hits
    httpd.shutdown()


def _entry(url, sha, name="file.bin"):
    return hub.RemoteFile(url, sha, name, "test file")


def test_download_verify_and_cache(server, tmp_path):
    base, root, hits = server
    payload = b"spike" * 1000
    (root / "good.bin").write_bytes(payload)
    reg = {"good": _entry(f"{base}/good.bin", hashlib.sha256(payload).hexdigest())}
    cache = tmp_path / "cache"
    p = hub.fetch("good", cache=cache, registry=reg, progress=False)
    assert p.read_bytes() == payload and not list(cache.glob("*.part"))
    p2 = hub.fetch("good", cache=cache, registry=reg, progress=False)
    assert p2 == p and hits.count("/good.bin") == 1  # verified file: never re-downloaded


def test_hash_mismatch_keeps_nothing(server, tmp_path):
    base, root, _ = server
    (root / "bad.bin").write_bytes(b"not the file")
    reg = {"bad": _entry(f"{base}/bad.bin", "0" * 64)}
    cache = tmp_path / "cache"
    with pytest.raises(hub.HashMismatchError, match="expected 0000"):
        hub.fetch("bad", cache=cache, registry=reg, progress=False)
    assert not any(cache.iterdir())


def test_truncated_download_is_an_error(server, tmp_path):
    base, _, _ = server
    reg = {"cut": _entry(f"{base}/truncated.bin", "0" * 64)}
    with pytest.raises(hub.DownloadError):
        hub.fetch("cut", cache=tmp_path, registry=reg, progress=False)
    assert not list(tmp_path.glob("*.part"))


def test_corrupt_cached_file_is_replaced(server, tmp_path):
    base, root, hits = server
    payload = b"abc" * 100
    (root / "f.bin").write_bytes(payload)
    reg = {"f": _entry(f"{base}/f.bin", hashlib.sha256(payload).hexdigest(), "f.bin")}
    (tmp_path / "f.bin").write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="does not match"):
        p = hub.fetch("f", cache=tmp_path, registry=reg, progress=False)
    assert p.read_bytes() == payload and hits == ["/f.bin"]


def test_unpinned_file_is_never_downloaded_or_trusted(server, tmp_path):
    base, root, hits = server
    (root / "u.bin").write_bytes(b"first")
    reg = {"u": _entry(f"{base}/u.bin", None, "u.bin")}
    with pytest.raises(hub.UnpinnedFileError, match="no pinned SHA-256"):
        hub.fetch("u", cache=tmp_path / "cache", registry=reg, progress=False)
    assert hits == [] and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    "path, why",
    [("/login.html", "HTML page"), ("/chunked.bin", "IncompleteRead"), ("/trickle.bin", "still downloading after")],
)
def test_bad_bodies_are_errors_and_leave_nothing(server, tmp_path, path, why):
    base, _, _ = server
    reg = {"x": _entry(f"{base}{path}", "0" * 64, "x.bin")}
    cache = tmp_path / "cache"
    with pytest.raises(hub.DownloadError, match=why):
        hub.fetch("x", cache=cache, registry=reg, progress=False, timeout=5, deadline=0.5)
    assert not any(cache.iterdir())  # no .part, no file, no sidecar


def test_no_server_fails_fast_with_a_clear_message(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    reg = {"x": _entry(f"http://127.0.0.1:{port}/x.bin", "0" * 64)}
    with pytest.raises(hub.DownloadError, match="by hand"):
        hub.fetch("x", cache=tmp_path, registry=reg, progress=False, timeout=3)


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKECLIP_CACHE", str(tmp_path / "c"))
    assert hub.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("SPIKECLIP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert hub.cache_dir() == tmp_path / "x" / "spikeclip_lite"


def test_registry_has_the_released_files():
    assert hub.REGISTRY["lrn_caltech"].sha256.startswith("68c20592")
    assert hub.REGISTRY["uhsr_helicopter"].sha256.startswith("6e47eb26")
    with pytest.raises(KeyError, match="unknown file"):
        hub.fetch("nope")


def test_pin_prints_the_hash_to_register_and_caches_nothing(server, tmp_path, monkeypatch):
    base, root, hits = server
    payload = b"model file"
    (root / "p.bin").write_bytes(payload)
    reg = {"p": _entry(f"{base}/p.bin", None, "p.bin")}
    monkeypatch.setenv("SPIKECLIP_CACHE", str(tmp_path / "cache"))
    assert hub.pin("p", registry=reg) == hashlib.sha256(payload).hexdigest()
    assert not (tmp_path / "cache").exists()
    assert {"pyiqa_niqe", "pyiqa_brisque"} <= set(hub.REGISTRY)  # the paper's metrics go through the cache
