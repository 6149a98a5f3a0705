"""Write-then-rename: an output file appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from embsim.errors import InputError


def temp_path_beside(path: Path) -> Path:
    """A new empty temporary file in ``path``'s directory (for write-then-rename)."""
    if path.is_dir():
        raise InputError("is a folder; expected the path of a file to write", source=str(path))
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:
        raise InputError(f"directory {str(path.parent)!r} does not exist",
                         source=str(path)) from None
    except OSError as err:
        raise InputError(f"cannot write in {str(path.parent)!r} ({err.strerror})",
                         source=str(path)) from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(name, 0o666 & ~umask)   # mkstemp makes 0600; results are ordinary files
    return Path(name)


def check_creatable(folder: Path, *, field: str) -> None:
    """``InputError`` (naming ``field``) unless ``folder`` is a folder, or could be made one:
    checked before anything is written, so that a bad path leaves nothing behind."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == folder else f"would be inside the file {str(existing)!r}"
        raise InputError(f"cannot be a folder: it {what}", source=str(folder), field=field)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot create or write in it: {str(existing)!r} is not writable",
                         source=str(folder), field=field)


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
