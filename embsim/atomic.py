"""Write-then-rename: an output file appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from embsim.errors import InputError


def temp_path_beside(path: Path) -> Path:
    """A new empty temporary file in ``path``'s directory (for write-then-rename)."""
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:
        raise InputError(f"directory {str(path.parent)!r} does not exist",
                         source=str(path)) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)   # mkstemp makes 0600; results are ordinary files
    return Path(name)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Create ``path``'s folder, call ``write(tmp)``, rename ``tmp`` to ``path``.

    If ``write`` fails, no file is left behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
