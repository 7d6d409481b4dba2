"""``fetch``: bring the released files into the cache, from the bucket or from a local path.

What is verified already is kept; a file put into the cache by hand is verified first (and
downloaded again if it does not verify). From the bucket (``base_url``, default
``catalog.BASE_URL``; ``--mirror`` replaces it) the archives are downloaded one at a time into
``<cache>/downloads/`` (``download``: resumable ``.partial``, atomic rename), the missing files
found in each by name and installed (``cache.install``: hashed, checked strictly, renamed into
place, recorded), and the archive removed; the second archive is fetched only if a file is still
missing. A download that stops keeps its ``.partial`` (the next fetch resumes it); an archive that
is not a complete zip is removed. From a local ``source`` (``--from``): a folder holding the files
(anywhere below it) or the archives, or one archive.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from tcvc.errors import UserError
from tcvc.weights import catalog
from tcvc.weights.cache import cache_dir, install, status, verify_in_place
from tcvc.weights.download import download

__all__ = ["fetch"]


def fetch(
    *,
    home: Path | None = None,
    base_url: str = catalog.BASE_URL,
    source: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Path]:
    """Make every released file present and verified in ``home`` (``cache_dir()``).

    Args:
        home: the cache folder (default ``$TCVC_HOME`` or ``~/.cache/tcvc``).
        base_url: where the archives are (``<base_url>/TCVC_IDC.zip``, ...).
        source: take the files from this local folder or zip instead (nothing is downloaded).
        progress: a tqdm bar per download. log: where the one-line reports go.

    Returns ``{name: path}`` of the verified files. Raises ``UserError`` in one line: the URL
    that failed, the archive without a file, the file that does not verify (not installed).
    """
    home = cache_dir() if home is None else Path(home)
    missing = _missing(home, log=log)
    if missing:
        problems: dict[str, str] = {}
        if source is not None:
            searched = _from_local(Path(source), missing, home=home, problems=problems, log=log)
        else:
            searched = _from_archives(
                base_url, missing, home=home, problems=problems, log=log, progress=progress
            )
        if missing:
            raise UserError(
                "; ".join(
                    problems.get(name, f"no {name} in {searched}") for name in sorted(missing)
                )
            )
    log(f"all {len(catalog.RELEASED)} released files verified in {home}")
    return {s.name: s.path for s in status(home=home)}


def _missing(home: Path, *, log: Callable[[str], None]) -> set[str]:
    """The names not verified in the cache; a file there unverified is verified now."""
    missing = set()
    for state in status(home=home):
        if state.state == "unverified":
            try:
                verify_in_place(catalog.released_file(state.name), home=home)
                log(f"verified {state.path} (it was in the cache)")
                continue
            except UserError as error:
                log(f"{error}: replacing it")
        if state.state != "verified":
            missing.add(state.name)
    return missing


def _ordered(missing: set[str]) -> list[catalog.Archive]:
    """The archives, those that likely hold a missing file first."""
    return sorted(catalog.ARCHIVES, key=lambda archive: not missing & set(archive.likely))


def _from_archives(
    base_url: str,
    missing: set[str],
    *,
    home: Path,
    problems: dict[str, str],
    log: Callable[[str], None],
    progress: bool,
) -> str:
    tried = []
    for archive in _ordered(missing):
        if not missing:
            break
        url = f"{base_url.rstrip('/')}/{archive.name}"
        tried.append(url)
        path = home / "downloads" / archive.name
        if path.is_file() and zipfile.is_zipfile(path):
            log(f"using {path}, downloaded before")  # a run stopped before installing
        else:
            path = download(url, path, progress=progress)
        try:
            _install_from_zip(path, missing, home=home, label=url, problems=problems, log=log)
        except UserError as error:  # the archive is bad: download it anew next time
            path.unlink(missing_ok=True)
            raise UserError(
                f"{error}; removed it: run the command again to download it anew"
            ) from error
        except OSError as error:  # a full disk, say: the archive is kept for the next run
            raise UserError(
                f"cannot install from {path}: {error.strerror or error}; kept it: run the "
                "command again"
            ) from error
        path.unlink()  # installed: the archive is no longer needed
    return ", ".join(tried)


def _from_local(
    source: Path,
    missing: set[str],
    *,
    home: Path,
    problems: dict[str, str],
    log: Callable[[str], None],
) -> str:
    if not source.exists():
        raise UserError(f"--from {source}: no such file or folder")
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise UserError(
                f"--from {source}: not a zip archive (give it, or the folder that holds the files)"
            )
        _install_from_zip(source, missing, home=home, label=str(source), problems=problems, log=log)
        return str(source)
    for name in sorted(missing):
        for path in sorted(p for p in source.rglob(name) if p.is_file()):
            with open(path, "rb") as stream:
                if _install(
                    stream,
                    name,
                    home=home,
                    label=str(path),
                    problems=problems,
                    log=log,
                    missing=missing,
                ):
                    break
    for path in sorted(source.glob("*.zip")):
        if missing and zipfile.is_zipfile(path):
            _install_from_zip(path, missing, home=home, label=str(path), problems=problems, log=log)
    return str(source)


def _install(
    stream,
    name: str,
    *,
    home: Path,
    label: str,
    problems: dict[str, str],
    log: Callable[[str], None],
    missing: set[str],
) -> bool:
    """Install one file; True when it verified (then it leaves ``missing``), else its error goes
    into ``problems``."""
    try:
        path = install(stream, catalog.released_file(name), home=home, source=label)
    except UserError as error:
        problems[name] = str(error)
        return False
    problems.pop(name, None)
    missing.discard(name)
    log(f"verified {path} (from {label})")
    return True


def _members(archive: zipfile.ZipFile, names: Iterable[str]) -> dict[str, zipfile.ZipInfo]:
    """The first member of each of ``names`` (by file name, in any folder; no ``__MACOSX/``)."""
    found: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        parts = PurePosixPath(info.filename).parts
        if info.is_dir() or not parts or "__MACOSX" in parts:
            continue
        if parts[-1] in names and parts[-1] not in found:
            found[parts[-1]] = info
    return found


def _install_from_zip(
    path: Path,
    missing: set[str],
    *,
    home: Path,
    label: str,
    problems: dict[str, str],
    log: Callable[[str], None],
) -> None:
    """Install the missing files that ``path`` holds (found by name), removing them from
    ``missing``; a file that does not verify goes into ``problems``."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name, info in _members(archive, set(missing)).items():
                with archive.open(info) as stream:
                    _install(
                        stream,
                        name,
                        home=home,
                        label=f"{label}:{info.filename}",
                        problems=problems,
                        log=log,
                        missing=missing,
                    )
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise UserError(f"{label} is not a complete zip archive ({error})") from error
    except (RuntimeError, NotImplementedError) as error:  # encrypted, or Deflate64 and the like
        raise UserError(f"{label}: cannot read the archive ({error})") from error
