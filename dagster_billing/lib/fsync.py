"""fsync of a file or a directory (a directory's, so a rename in it survives a crash)."""

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
