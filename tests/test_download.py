"""Checkpoint downloads against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server

import pytest

from sansa_cli.artifacts.download import download
from sansa_cli.artifacts.sam2_checkpoints import sam2_checkpoint
from sansa_cli.core.sam2_base import resolve_base
from sansa_cli.errors import CheckpointError, DownloadError
from tests.adapters_fixtures import serve

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.endswith("missing.pt"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        body = PAYLOAD[: len(PAYLOAD) // 2] if "truncated" in self.path else PAYLOAD
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    url, httpd = serve(handler=_Handler)
    yield url
    httpd.shutdown()
    httpd.server_close()


def test_download_success_with_checksum(server, tmp_path):
    dest = download(f"{server}/ok.pt", tmp_path / "ok.pt",
                    sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == ["ok.pt"]


def test_truncated_download_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="cut short|broke off"):
        download(f"{server}/truncated.pt", tmp_path / "t.pt")
    assert list(tmp_path.iterdir()) == []


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="SHA-256"):
        download(f"{server}/ok.pt", tmp_path / "bad.pt", sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


def test_http_error_says_where_to_put_the_file(server, tmp_path):
    with pytest.raises(DownloadError, match=str(tmp_path / "missing.pt")):
        download(f"{server}/missing.pt", tmp_path / "missing.pt")


def test_stock_checkpoint_is_fetched_into_the_checkpoint_dir(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SANSA_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("SANSA_SAM2_URL", server)
    path = sam2_checkpoint(resolve_base("sam2.1_hiera_tiny"))
    assert path == tmp_path / "sam2.1_hiera_tiny.pt" and path.read_bytes() == PAYLOAD
    assert sam2_checkpoint(resolve_base("sam2.1_hiera_tiny"), download=False) == path


def test_offline_error_names_the_place(tmp_path, monkeypatch):
    monkeypatch.setenv("SANSA_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("SANSA_SAM2_URL", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(DownloadError, match="place it at"):
        sam2_checkpoint(resolve_base("sam2_hiera_large"))
    with pytest.raises(CheckpointError, match=str(tmp_path / "sam2_hiera_large.pt")):
        sam2_checkpoint(resolve_base("sam2_hiera_large"), download=False)
