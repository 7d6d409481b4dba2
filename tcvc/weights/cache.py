"""The weights cache: its folder, the manifest of verified files, and installing a file into it.

The folder is ``$TCVC_HOME`` (default ``~/.cache/tcvc``). It holds the released files under their
own names (``80000_G.pth``, ``FlowNet2_checkpoint.pth.tar``, ``siggraph17-df00044c.pth``),
``manifest.json`` (``{"files": {name: {"sha256", "size", "mtime_ns", "source"}}}``: the files
verified) and ``downloads/`` (archives while they download). A file is *verified* when the
manifest records it with the size and modification time it has now (and, for a name with a hash
in it, a SHA-256 that fits the name); a file put there by hand, or changed since, is verified on
first use (``released_path``) or by ``python -m tcvc.weights fetch``.

``install`` copies a stream to a hidden file beside its final name, hashing it on the way, checks
the hash in its name (if any) and its strict layout, and only then renames it into place
(``os.replace``) and records it: nothing half-written or unverified ever has a released name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tcvc.errors import UserError
from tcvc.weights import catalog
from tcvc.weights.catalog import ReleasedFile

__all__ = [
    "FETCH_COMMAND",
    "FileStatus",
    "cache_dir",
    "install",
    "read_manifest",
    "released_path",
    "status",
    "verify_in_place",
]

log = logging.getLogger(__name__)

FETCH_COMMAND = "python -m tcvc.weights fetch"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """``$TCVC_HOME``, or ``~/.cache/tcvc`` when it is not set (not created here)."""
    home = os.environ.get("TCVC_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "tcvc"


def read_manifest(home: Path) -> dict[str, dict]:
    """``{name: {"sha256", "size", "source"}}`` of the verified files ({} without a manifest; an
    unreadable one counts as empty: its files are verified again)."""
    try:
        files = json.loads((home / MANIFEST).read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return files if isinstance(files, dict) else {}


def _record(home: Path, name: str, *, sha256: str, source: str) -> None:
    stat = (home / name).stat()
    files = read_manifest(home)
    files[name] = {
        "sha256": sha256,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "source": source,
    }
    temporary = home / f".{MANIFEST}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps({"files": files}, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, home / MANIFEST)


@dataclass(frozen=True)
class FileStatus:
    """One released file in the cache: ``state`` is ``verified``, ``unverified`` (there, not in
    the manifest at its size: put there by hand, or changed) or ``missing``."""

    name: str
    path: Path
    state: str
    size: int | None = None
    sha256: str | None = None


def status(*, home: Path | None = None) -> list[FileStatus]:
    """The state of every released file in the cache (no hashing: sizes and the manifest)."""
    home = cache_dir() if home is None else home
    manifest = read_manifest(home)
    result = []
    for entry in catalog.RELEASED:
        path = home / entry.name
        if not path.is_file():
            result.append(FileStatus(entry.name, path, "missing"))
            continue
        stat = path.stat()
        size = stat.st_size
        record = manifest.get(entry.name, {})
        sha256 = str(record.get("sha256") or "")
        unchanged = record.get("size") == size and record.get("mtime_ns") == stat.st_mtime_ns
        if unchanged and sha256 and sha256.startswith(entry.sha256_prefix or ""):
            result.append(FileStatus(entry.name, path, "verified", size, record["sha256"]))
        else:
            result.append(FileStatus(entry.name, path, "unverified", size))
    return result


def _check(entry: ReleasedFile, path: Path, digest: str, *, source: str) -> None:
    """Raise ``UserError`` naming the file unless ``digest`` fits its name and it loads strictly."""
    from tcvc.nets.checkpoints import CheckpointError

    origin = source if source == str(path) else f"{entry.name} (from {source})"
    if entry.sha256_prefix and not digest.startswith(entry.sha256_prefix):
        raise UserError(
            f"{origin}: its SHA-256 starts {digest[:8]}, not {entry.sha256_prefix} as its name "
            "says (a corrupt or another file)"
        )
    try:
        entry.verify(path)
    except (CheckpointError, FileNotFoundError) as error:
        message = str(error).replace(str(path), entry.name)
        raise UserError(
            f"{origin} is not {entry.what} in its released layout ({message})"
        ) from error


def install(stream: BinaryIO, entry: ReleasedFile, *, home: Path, source: str) -> Path:
    """Copy ``stream`` into the cache as ``entry.name``, verified; record it; return its path.

    ``source`` (a URL, an archive member, a path) is recorded and named in errors. Raises
    ``UserError`` (the file is then not installed, and no temporary file is left).
    """
    home.mkdir(parents=True, exist_ok=True)
    target = home / entry.name
    temporary = home / f".{entry.name}.{os.getpid()}.tmp"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(temporary, "wb") as file:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                file.write(chunk)
                size += len(chunk)
            file.flush()
            os.fsync(file.fileno())
        try:
            _check(entry, temporary, digest.hexdigest(), source=source)
        except UserError as error:
            raise UserError(f"{error}; not installed") from error
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    _record(home, entry.name, sha256=digest.hexdigest(), source=source)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_in_place(entry: ReleasedFile, *, home: Path) -> Path:
    """Verify a file already at its place in the cache (put there by hand) and record it."""
    path = home / entry.name
    digest = _sha256(path)
    _check(entry, path, digest, source=str(path))
    try:
        _record(home, entry.name, sha256=digest, source=str(path))
    except OSError as error:  # a read-only shared cache: the file is good all the same
        log.warning("%s verified, but not recorded in %s (%s)", path, home / MANIFEST, error)
    return path


def released_path(name: str, *, home: Path | None = None, option: str | None = None) -> Path:
    """The verified cached file ``name`` (one of ``catalog.RELEASED``), for ``option=released``.

    A file put into the cache by hand is verified now (and recorded). Raises ``UserError`` in one
    line: when the file is missing, the command that fetches it and where to put it by hand;
    when it does not verify, why.
    """
    home = cache_dir() if home is None else home
    entry = catalog.released_file(name)
    asked = f"{option}=released: " if option else ""
    state = next(s for s in status(home=home) if s.name == name)
    if state.state == "verified":
        return state.path
    if state.state == "missing":
        raise UserError(
            f"{asked}{name} is not in the weights cache {home}: run `{FETCH_COMMAND}` (or put "
            f"{name} downloaded by hand at {state.path}; TCVC_HOME sets the folder)"
        )
    try:
        return verify_in_place(entry, home=home)
    except UserError as error:
        raise UserError(f"{asked}{error}; remove it and run `{FETCH_COMMAND}`") from error
