"""Finding MovieLens on disk, or downloading it from GroupLens with a checksum check."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from tqdm import tqdm

from recfunnel.errors import DataError

DATA_DIR_ENV = "RECFUNNEL_DATA_DIR"


@dataclass(frozen=True)
class Archive:
    name: str
    url: str
    md5: str
    ratings_file: str


ARCHIVES = {
    "ml-1m": Archive("ml-1m", "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
                     "c4d9eecfca2ab87c1945afe126590906", "ratings.dat"),
    "ml-100k": Archive("ml-100k", "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
                       "0e33842e24a9c977be4e0107933c0723", "u.data"),
}


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("recfunnel"))


def search_dirs(data_dir: Path | None = None) -> list[Path]:
    """Where a named dataset is looked for, in order: --data-dir, $RECFUNNEL_DATA_DIR, the cache."""
    dirs = [Path(data_dir)] if data_dir else []
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(Path(os.environ[DATA_DIR_ENV]))
    dirs.append(cache_dir())
    return dirs


def find_local(name: str, data_dir: Path | None = None) -> Path | None:
    archive = ARCHIVES[name]
    for base in search_dirs(data_dir):
        if (base / name / archive.ratings_file).is_file():
            return base / name
    return None


def fetch(name: str, data_dir: Path | None = None, *, timeout: float = 20.0) -> Path:
    """The directory of a named MovieLens dataset: a local copy if one exists, else downloaded."""
    local = find_local(name, data_dir)
    if local is not None:
        return local
    return download(ARCHIVES[name], cache_dir(), timeout=timeout)


def download(archive: Archive, into: Path, *, timeout: float = 20.0) -> Path:
    """Download ``archive`` into ``into/<name>``, verify its MD5, and unpack it."""
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into) as tmp:
        zip_path = Path(tmp) / f"{archive.name}.zip"
        try:
            with urllib.request.urlopen(archive.url, timeout=timeout) as response, \
                    open(zip_path, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {archive.name}",
                          disable=None) as bar:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, TimeoutError, OSError) as err:
            raise DataError(
                f"cannot download {archive.name} from {archive.url} ({_reason(err)}): this machine "
                f"seems to have no internet access. Put a copy of the dataset in a directory "
                f"<DIR>/{archive.name}/ and pass --data-dir <DIR> or set {DATA_DIR_ENV}=<DIR>"
            ) from None
        digest = _md5(zip_path)
        if digest != archive.md5:
            raise DataError(f"downloaded {archive.url} has MD5 {digest}, expected {archive.md5}: "
                            "the file is corrupt or was changed; nothing was unpacked")
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(tmp)
        target = into / archive.name
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(Path(tmp) / archive.name), target)
    return target


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(err: Exception) -> str:
    return str(getattr(err, "reason", None) or err)
