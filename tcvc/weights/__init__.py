"""The released weights in one command: download, verify, cache, and ``released`` as a value.

    python -m tcvc.weights fetch [--mirror URL] [--from DIR_OR_ZIP]
    python -m tcvc.weights list

``fetch`` downloads the original README's archives (``TCVC_IDC.zip``, ``pretrained_models.zip``)
into the cache folder (``$TCVC_HOME``, default ``~/.cache/tcvc``), takes ``80000_G.pth``,
``FlowNet2_checkpoint.pth.tar`` and ``siggraph17-df00044c.pth`` out of them by name, verifies each
(strict loading in its layout, the hash in its name) and records its SHA-256 in
``manifest.json``. ``released_path(name)`` is what an option set to ``released`` resolves to
(``tcvc.tasks.config``). Nothing is downloaded at import or unless asked.

- ``catalog``: the released files and archives, and their strict checks;
- ``download``: one resumable HTTP download (urllib, tqdm);
- ``cache``: the folder, the manifest, installing a verified file, the state of each file;
- ``fetch``: the archives or a local path into the cache; ``__main__``: the command line.
"""

from tcvc.weights.cache import FETCH_COMMAND, FileStatus, cache_dir, released_path, status
from tcvc.weights.catalog import ARCHIVES, BASE_URL, RELEASED, Archive, ReleasedFile
from tcvc.weights.download import download
from tcvc.weights.fetch import fetch

__all__ = [
    "ARCHIVES",
    "BASE_URL",
    "FETCH_COMMAND",
    "RELEASED",
    "Archive",
    "FileStatus",
    "ReleasedFile",
    "cache_dir",
    "download",
    "fetch",
    "released_path",
    "status",
]
