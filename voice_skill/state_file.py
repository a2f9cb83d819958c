"""The small JSON state files (the phrase bag, the ritual memory, the saved voice): each is
written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file beside it, so that a crash or a full
    disk never leaves half a file behind. Raises OSError; the caller says what it means."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(text, "utf-8")
    os.replace(tmp, path)
