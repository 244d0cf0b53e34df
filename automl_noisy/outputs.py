"""Output files: never one of the command's inputs, and never left half-written.

Every command that writes (``search``'s study database, ``export``, ``report``, ``predict``,
``train``'s model folder) names its inputs, and :func:`refuse_inputs` turns a typo such as
``export -o automl-noisy.db`` into one line instead of a lost study. Paths are compared resolved
(``..``, symbolic links) and, where both exist, as files (hard links). :func:`write_atomically`
writes beside the target and renames, so a full disk or a read-only folder leaves the old file as
it was and says so in one line.

>>> refuse_inputs(["out.csv"], {"the data file": "data.csv"})
>>> refuse_inputs(["./data.csv"], {"the data file": "data.csv"})
Traceback (most recent call last):
...
automl_noisy.errors.UserError: output ./data.csv is the data file this command reads (data.csv); writing it would destroy it: pass another -o
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from automl_noisy.errors import UserError

PathLike = str | os.PathLike


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file: the same resolved path, or (both existing) the same
    inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def refuse_inputs(outputs: Iterable[PathLike], inputs: Mapping[str, PathLike | None], flag: str = "-o") -> None:
    """A UserError when an output path is one of the ``inputs`` (``{what it is: path}``; None is
    skipped); the message asks for another ``flag``."""
    for out in outputs:
        for what, path in inputs.items():
            if path is not None and str(path) and same_file(out, path):
                raise UserError(f"output {out} is {what} this command reads ({path}); writing it would destroy it: "
                                f"pass another {flag}")


def sqlite_file(url: str) -> str | None:
    """The file of an SQLite storage URL (None for another database or an in-memory one)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else path


def data_files(spec: Any) -> dict[str, str]:
    """The files a data spec reads, by what they are: the data file (csv, parquet, npz; a folder of
    images counts too), a label file (``--labels``) and a trusted file (``--trusted``)."""
    from automl_noisy.data.sources import resolve_source

    out = {}
    try:
        kind, path = resolve_source(str(spec.source))  # csv:x.csv, CSV: x.csv and a bare x.csv alike
    except UserError:  # not a source: the command refuses it itself, with its own message
        kind, path = "", ""
    if path and kind in ("csv", "parquet", "npz", "folder"):
        out["the data file" if kind != "folder" else "the image folder"] = path
    labels = (spec.options or {}).get("labels")
    if isinstance(labels, str) and labels:
        out["the label file"] = labels.split(":", 1)[0] if not os.path.exists(labels) else labels
    trusted = (spec.options or {}).get("trusted")
    if isinstance(trusted, str) and trusted and not trusted.startswith("memory:"):
        out["the trusted file"] = trusted
    return out


def check_writable_folder(path: PathLike) -> None:
    """A UserError when ``path``'s folder does not exist or ``path`` is a folder."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; pass a file name, e.g. {path / 'out'}")
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")


def write_atomically(path: PathLike, write: Callable[[IO[Any]], None], binary: bool = False) -> None:
    """Write ``path`` through ``write(file)``: into a temporary file beside it, then renamed over it,
    so a failure (full disk, read-only folder, an error in ``write``) leaves any old file unchanged;
    a path that is not a regular file (``/dev/stdout``, a pipe) is written in place. An ``OSError``
    is a UserError naming the file."""
    path = Path(path)
    check_writable_folder(path)
    if path.exists() and not path.is_file():  # a device or a pipe (/dev/stdout): written in place
        try:
            with open(path, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
                write(f)
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None
        return
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        mode = 0o666 & ~_umask()
        os.chmod(temporary, mode)  # mkstemp makes 0600; a plain open() would have made this
        os.replace(temporary, path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def write_text(path: PathLike, text: str) -> None:
    """:func:`write_atomically` for a text."""
    write_atomically(path, lambda f: f.write(text))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
