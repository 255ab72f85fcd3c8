"""The real downloader, against a loopback HTTP server: checksum, unpacking, offline error."""

import hashlib
import http.server
import io
import threading
import zipfile
from functools import partial

import pytest

from recfunnel.data import download
from recfunnel.errors import DataError


@pytest.fixture
def served_zip(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ml-100k/u.data", "1\t1\t5\t881250949\n")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "ml-100k.zip").write_bytes(buffer.getvalue())
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ml-100k.zip", buffer.getvalue()
    server.shutdown()


def test_download_verifies_and_unpacks(tmp_path, served_zip):
    url, payload = served_zip
    archive = download.Archive("ml-100k", url, hashlib.md5(payload).hexdigest(), "u.data")
    path = download.download(archive, tmp_path / "cache")
    assert (path / "u.data").read_text().startswith("1\t1\t5")


def test_checksum_mismatch_unpacks_nothing(tmp_path, served_zip):
    url, _ = served_zip
    archive = download.Archive("ml-100k", url, "0" * 32, "u.data")
    with pytest.raises(DataError, match="expected 0{32}"):
        download.download(archive, tmp_path / "cache")
    assert not (tmp_path / "cache" / "ml-100k").exists()


def test_no_internet_says_how_to_use_local_data(tmp_path):
    archive = download.Archive("ml-1m", "http://127.0.0.1:9/ml-1m.zip", "0" * 32, "ratings.dat")
    with pytest.raises(DataError, match="no internet access.*--data-dir <DIR> or set RECFUNNEL_DATA_DIR"):
        download.download(archive, tmp_path, timeout=2)


def test_local_copy_is_preferred(tmp_path, monkeypatch):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t1\t5\t1\n")
    monkeypatch.delenv(download.DATA_DIR_ENV, raising=False)
    assert download.fetch("ml-100k", tmp_path) == tmp_path / "ml-100k"
    monkeypatch.setenv(download.DATA_DIR_ENV, str(tmp_path))
    assert download.fetch("ml-100k") == tmp_path / "ml-100k"
