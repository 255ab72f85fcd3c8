"""Which artifact version a server process should serve.

A server follows its artifact directory as TF Serving follows a model path: any change on disk (a
refit into the same directory, items added by another process, a rebuilt index) gives the
manifest a new stamp, and the process loads the new version and swaps it in between requests.
With several worker processes (``serve --workers``), a file in a directory they share names the
directory they all serve, so that a reload asked of one worker reaches the others.
"""

from __future__ import annotations

import json
from pathlib import Path

from recfunnel.artifacts import replace_file, version_stamp

POINTER_FILE = "artifacts.json"


class Pointer:
    """The artifact directory every worker of one server serves, kept in ``shared``."""

    def __init__(self, shared: Path):
        self.path = shared / POINTER_FILE

    def read(self) -> Path | None:
        try:
            return Path(json.loads(self.path.read_text())["artifacts"])
        except FileNotFoundError:
            return None

    def write(self, artifacts: Path) -> None:
        """Atomically: a worker reads the old directory's name or the new one's."""
        replace_file(self.path, lambda p: p.write_text(
            json.dumps({"artifacts": str(artifacts.resolve())})))


def wanted(path: Path, stamp: tuple[int, int] | None, pointer: Pointer | None) -> Path | None:
    """The artifact directory to load instead of the version at ``path`` with ``stamp``, or None
    while that is still the one to serve (or nothing loadable is there yet: a refit swapping the
    directory into place)."""
    target = (pointer.read() if pointer else None) or path
    now = version_stamp(target)
    if now is None or (target.resolve() == path.resolve() and now == stamp):
        return None
    return target
