"""``python -m tcvc.weights``: the released archives from a local HTTP server (never the internet).

The server (``http.server`` on 127.0.0.1, port 0, in a thread) serves archives in the released
layout (``TCVC_IDC.zip`` and ``pretrained_models.zip``), honours ``Range`` and can be told to
answer 404, to drop the connection mid-file or to ignore ``Range``; it logs every request. The
weights files have the released names and shapes (``tests/data/original_tcvc_idc_layout.json``:
every key and shape of ``80000_G.pth``; FlowNet2's and IDC's are its ``flow.`` and ``fea_key.``
parts), each tensor one value broadcast to its shape (a stride-0 view: torch saves one element),
so the files are ~100 kB and load strictly into the full-size networks. ``TCVC_HOME`` is a
temporary folder; the generated IDC file's SHA-256 cannot start with ``df00044c``, so the tests
that are not about that hash accept the file's own (``accept_idc_hash``).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import subprocess
import sys
import threading
import zipfile
import zlib
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import LAYOUT, ROOT
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tcvc.errors import UserError
from tcvc.tasks.config import resolve_released
from tcvc.weights import catalog, download
from tcvc.weights.__main__ import format_list, main
from tcvc.weights.cache import released_path, status

CONF = str(ROOT / "conf")
TCVC, FLOWNET, IDC_FILE = "80000_G.pth", "FlowNet2_checkpoint.pth.tar", "siggraph17-df00044c.pth"
# where the original README's links lead (the labels there look swapped), and the other way round
AS_NAMED = {
    "TCVC_IDC.zip": {f"TCVC_IDC/models/{TCVC}": TCVC},
    "pretrained_models.zip": {
        f"pretrained_models/{FLOWNET}": FLOWNET,
        f"pretrained_models/{IDC_FILE}": IDC_FILE,
    },
}
SWAPPED = {
    "TCVC_IDC.zip": {f"experiments/pretrained_models/{IDC_FILE}": IDC_FILE, "README.txt": None},
    "pretrained_models.zip": {f"x/{TCVC}": TCVC, f"y/{FLOWNET}": FLOWNET},
}


def value_of(key: str) -> float:
    """The one value of tensor ``key`` in the generated files (different per key)."""
    return (zlib.crc32(key.encode()) % 997) / 997


def broadcast(state: dict[str, list[int]]) -> OrderedDict:
    tensors = OrderedDict()
    for key, shape in state.items():
        if key.endswith("num_batches_tracked"):
            tensors[key] = torch.tensor(7, dtype=torch.int64).expand(shape)
        else:
            tensors[key] = torch.tensor(value_of(key)).expand(shape)
    return tensors


def saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def layout() -> dict[str, list[int]]:
    return json.loads(LAYOUT.read_text())


def flownet_state(layout) -> OrderedDict:
    return broadcast({k.removeprefix("flow."): v for k, v in layout.items() if k[:5] == "flow."})


def idc_state(layout) -> OrderedDict:
    fea = {k.removeprefix("fea_key."): v for k, v in layout.items() if k.startswith("fea_key.")}
    return broadcast(fea)


@pytest.fixture(scope="module")
def weights(layout) -> dict[str, bytes]:
    """The three files in their released layouts: name -> bytes."""
    return {
        TCVC: saved(broadcast(layout)),
        FLOWNET: saved({"epoch": 0, "state_dict": flownet_state(layout), "best_EPE": 1.5}),
        IDC_FILE: saved(idc_state(layout)),
    }


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def archives(weights, plan=AS_NAMED, **replaced: bytes) -> dict[str, bytes]:
    """``{"/TCVC_IDC.zip": bytes, ...}`` with the files of ``plan`` (``replaced``: other bytes
    for a file name, ``None`` leaves it out)."""
    served = {}
    for archive, members in plan.items():
        content = {}
        for member, name in members.items():
            data = b"not a weights file" if name is None else replaced.get(name, weights.get(name))
            if data is not None:
                content[member] = data
        served[f"/{archive}"] = zipped(content)
    return served


class Server(http.server.ThreadingHTTPServer):
    """Serves ``files`` (path -> bytes); ``ignore_range``, ``drop_after`` (bytes of a body sent
    before the connection is closed), ``requests`` (path, Range header, body bytes sent)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}
        self.ignore_range = False
        self.drop_after: int | None = None
        self.requests: list[tuple[str, str | None, int]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        data = self.server.files.get(self.path)
        asked = self.headers.get("Range")
        if data is None:
            self.server.requests.append((self.path, asked, 0))
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", asked or "")
        if match and not self.server.ignore_range:
            start = int(match[1])
            if start >= len(data):
                self.server.requests.append((self.path, asked, 0))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.drop_after is not None:
            body = body[: self.server.drop_after]
            self.close_connection = True
        self.wfile.write(body)
        self.server.requests.append((self.path, asked, len(body)))

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def server():
    server = Server()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """The cache folder (``TCVC_HOME``), not created; no proxy between us and 127.0.0.1."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    home = tmp_path / "cache"
    monkeypatch.setenv("TCVC_HOME", str(home))
    return home


@pytest.fixture
def accept_idc_hash(monkeypatch):
    """``accept_idc_hash(data)``: the released IDC name's hash is taken to be ``data``'s."""

    def accept(data: bytes) -> None:
        prefix = hashlib.sha256(data).hexdigest()[:8]
        released = tuple(
            replace(f, sha256_prefix=prefix) if f.name == IDC_FILE else f for f in catalog.RELEASED
        )
        monkeypatch.setattr(catalog, "RELEASED", released)

    return accept


def fetch_cli(server, *extra: str) -> int:
    return main(["fetch", "--mirror", server.url, "--quiet", *extra])


def stderr_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def leftovers(home: Path) -> list[str]:
    """Files in the cache other than the released ones and the manifest."""
    known = {TCVC, FLOWNET, IDC_FILE, "manifest.json"}
    return sorted(
        str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p.name not in known
    )


def composed(task: str, overrides: list[str]):
    required = {"colorize": ["input=a.mp4", "output=b.mp4"], "eval": [], "train": []}[task]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose(config_name=task, overrides=[*required, *overrides])


# ---- fetching ----------------------------------------------------------------------------------
@pytest.mark.parametrize("plan", [AS_NAMED, SWAPPED], ids=["as-named", "swapped"])
def test_fetch_installs_verified_files_and_their_sha256(
    plan, server, home, weights, accept_idc_hash, capsys
):
    accept_idc_hash(weights[IDC_FILE])
    server.files = archives(weights, plan)
    assert fetch_cli(server) == 0
    manifest = json.loads((home / "manifest.json").read_text())["files"]
    for name, data in weights.items():
        assert (home / name).read_bytes() == data
        assert manifest[name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert manifest[name]["size"] == len(data)
    assert leftovers(home) == []  # archives removed once extracted, no partial or temporary file
    assert [path for path, _, _ in server.requests] == ["/TCVC_IDC.zip", "/pretrained_models.zip"]
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"all 3 released files verified in {home}"
    )
    # a second fetch downloads nothing
    assert fetch_cli(server) == 0 and len(server.requests) == 2


def test_released_resolves_to_the_cached_files_and_they_load(
    server, home, weights, accept_idc_hash, layout
):
    from tcvc.nets import IDC, FlowNet2, TCVCNet, load_backbone

    accept_idc_hash(weights[IDC_FILE])
    server.files = archives(weights)
    assert fetch_cli(server) == 0
    cfg = resolve_released(
        composed(
            "colorize",
            ["ckpt=released", "model.flownet_weights=released", "model.idc_weights=released"],
        )
    )
    assert (cfg.ckpt, cfg.model.flownet_weights, cfg.model.idc_weights) == (
        str(home / TCVC),
        str(home / FLOWNET),
        str(home / IDC_FILE),
    )
    key = "L_fea_extractor.0.weight"
    net = TCVCNet.from_pretrained(cfg.ckpt)
    assert torch.equal(net.head.l_features.conv1.weight, broadcast({key: layout[key]})[key])
    idc = load_backbone(cfg.model.idc_weights, "idc", IDC())
    assert idc.model_out[0].weight.flatten()[0] == pytest.approx(value_of("model_out.0.weight"))
    flownet = load_backbone(cfg.model.flownet_weights, "flownet", FlowNet2())
    first = next(iter(flownet_state(layout)))
    assert flownet.state_dict()[first].flatten()[0] == pytest.approx(value_of(first))


@pytest.mark.parametrize(
    ("task", "key"),
    [
        ("eval", "ckpt"),
        ("eval", "model.idc_weights"),
        ("train", "model.tcvc_weights"),
        ("train", "model.flownet_weights"),
    ],
)
def test_released_is_resolved_for_every_task(task, key, home, weights, accept_idc_hash):
    accept_idc_hash(weights[IDC_FILE])
    for name, data in weights.items():  # put there by hand: verified on first use
        home.mkdir(exist_ok=True)
        (home / name).write_bytes(data)
    cfg = resolve_released(composed(task, [f"{key}=released"]))
    name = {
        "ckpt": TCVC,
        "model.tcvc_weights": TCVC,
        "model.idc_weights": IDC_FILE,
        "model.flownet_weights": FLOWNET,
    }[key]
    assert OmegaConf.select(cfg, key) == str(home / name)
    manifest = json.loads((home / "manifest.json").read_text())["files"]
    assert list(manifest) == [name]
    assert manifest[name]["sha256"] == hashlib.sha256(weights[name]).hexdigest()


def not_cached(home: Path) -> str:
    """The one line for ``ckpt=released`` when the cache is empty."""
    return (
        f"ckpt=released: 80000_G.pth is not in the weights cache {home}: run `python -m "
        f"tcvc.weights fetch` (or put 80000_G.pth downloaded by hand at {home / TCVC}; TCVC_HOME "
        "sets the folder)"
    )


def test_released_with_an_empty_cache_is_one_line_with_the_fetch_command(home):
    with pytest.raises(UserError) as error:
        resolve_released(composed("colorize", ["ckpt=released"]))
    assert str(error.value) == not_cached(home)
    assert not home.exists()


# an entry point (colorize.py is run_task("colorize", colorize)) whose task prints what it sees
ENTRY = "from tcvc.tasks.config import run_task; run_task('colorize', lambda cfg: print(cfg.ckpt))"


def run_entry(home: Path, tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            ENTRY,
            "input=a.mp4",
            "output=b.mp4",
            *overrides,
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "TCVC_ROOT": str(ROOT), "TCVC_HOME": str(home)},
    )


def test_run_task_resolves_released_before_the_task_sees_the_config(home, tmp_path, weights):
    run = run_entry(home, tmp_path, "ckpt=released")
    assert run.returncode == 1, run.stderr
    assert run.stderr.strip().splitlines() == [f"error: {not_cached(home)}"]
    home.mkdir()
    (home / TCVC).write_bytes(weights[TCVC])  # put there by hand
    run = run_entry(home, tmp_path, "ckpt=released")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(home / TCVC)


def test_a_bad_file_put_there_by_hand_is_named_and_replaced_by_fetch(
    server, home, weights, accept_idc_hash, capsys
):
    accept_idc_hash(weights[IDC_FILE])
    home.mkdir()
    (home / TCVC).write_bytes(weights[TCVC][:5000])  # an interrupted copy
    with pytest.raises(UserError) as error:
        resolve_released(composed("eval", ["ckpt=released"]))
    message = str(error.value)
    assert message.startswith(
        f"ckpt=released: {home / TCVC} is not the released TCVC model (TCVC_IDC) in its released "
        "layout (cannot read weights file 80000_G.pth (5,000 bytes)"
    )
    assert message.endswith("); remove it and run `python -m tcvc.weights fetch`")
    assert "\n" not in message
    server.files = archives(weights)
    assert fetch_cli(server) == 0
    assert (home / TCVC).read_bytes() == weights[TCVC]
    assert capsys.readouterr().out.splitlines()[0].endswith(": replacing it")


# ---- downloads: resumption, servers that ignore Range, connections that drop -------------------
def test_a_partial_download_is_resumed_with_a_range_request(server, home, weights, accept_idc_hash):
    accept_idc_hash(weights[IDC_FILE])
    server.files = archives(weights)
    archive = server.files["/TCVC_IDC.zip"]
    keep = len(archive) // 3
    (home / "downloads").mkdir(parents=True)
    (home / "downloads" / "TCVC_IDC.zip.partial").write_bytes(archive[:keep])
    assert fetch_cli(server) == 0
    assert server.requests[0] == ("/TCVC_IDC.zip", f"bytes={keep}-", len(archive) - keep)
    assert (home / TCVC).read_bytes() == weights[TCVC]
    assert leftovers(home) == []


@pytest.mark.parametrize("case", ["resume", "server-ignores-range", "partial-too-long", "complete"])
def test_download_resumes_or_starts_again(case, server, home, tmp_path):
    data = os.urandom(300_000)
    server.files = {"/a.zip": data}
    target = tmp_path / "a.zip"
    start = {
        "resume": data[:123_457],
        "server-ignores-range": b"x" * 1000,
        "partial-too-long": data + b"more",
        "complete": data,  # a run killed between its last byte and the rename
    }[case]
    (tmp_path / "a.zip.partial").write_bytes(start)
    server.ignore_range = case == "server-ignores-range"
    assert download(f"{server.url}/a.zip", target, progress=False) == target
    assert target.read_bytes() == data
    assert not (tmp_path / "a.zip.partial").exists()
    asked = f"bytes={len(start)}-"
    expected = {
        "resume": [("/a.zip", asked, len(data) - len(start))],
        "server-ignores-range": [("/a.zip", asked, len(data))],
        "partial-too-long": [("/a.zip", asked, 0), ("/a.zip", None, len(data))],
        "complete": [("/a.zip", asked, 0)],  # 416 bytes */N with N its size: nothing again
    }[case]
    assert server.requests == expected


def test_a_dropped_connection_keeps_the_partial_and_the_next_fetch_resumes(
    server, home, weights, accept_idc_hash, capsys
):
    accept_idc_hash(weights[IDC_FILE])
    server.files = archives(weights)
    archive = server.files["/TCVC_IDC.zip"]
    server.drop_after = len(archive) // 2
    assert fetch_cli(server) == 1
    partial = home / "downloads" / "TCVC_IDC.zip.partial"
    assert stderr_line(capsys) == (
        f"error: download of {server.url}/TCVC_IDC.zip stopped at {len(archive) // 2:,} of "
        f"{len(archive):,} bytes (the connection closed); kept {partial}: run the command again "
        "to resume"
    )
    assert partial.read_bytes() == archive[: len(archive) // 2]
    assert not (home / "downloads" / "TCVC_IDC.zip").exists()
    assert not any((home / name).exists() for name in weights)
    server.drop_after = None
    assert fetch_cli(server) == 0
    assert server.requests[1] == (
        "/TCVC_IDC.zip",
        f"bytes={len(archive) // 2}-",
        len(archive) - len(archive) // 2,
    )
    assert all((home / name).read_bytes() == data for name, data in weights.items())


def test_an_incomplete_zip_is_named_and_removed(server, home, weights, capsys):
    server.files = archives(weights)
    server.files["/TCVC_IDC.zip"] = server.files["/TCVC_IDC.zip"][:-500]  # served as complete
    assert fetch_cli(server) == 1
    assert stderr_line(capsys) == (
        f"error: {server.url}/TCVC_IDC.zip is not a complete zip archive (File is not a zip "
        "file); removed it: run the command again to download it anew"
    )
    assert leftovers(home) == [] and not (home / TCVC).exists()


def test_a_missing_archive_is_one_line_naming_the_url(server, home, weights, capsys):
    server.files = archives(weights)
    del server.files["/TCVC_IDC.zip"]
    assert fetch_cli(server) == 1
    assert stderr_line(capsys) == (
        f"error: cannot download {server.url}/TCVC_IDC.zip: HTTP 404 Not Found"
    )
    assert not home.exists() or leftovers(home) == []


# ---- what the archives hold --------------------------------------------------------------------
def test_an_archive_without_a_file_names_the_archives_and_the_file(
    server, home, weights, accept_idc_hash, capsys
):
    accept_idc_hash(weights[IDC_FILE])
    server.files = archives(weights, **{IDC_FILE: None})
    assert fetch_cli(server) == 1
    assert stderr_line(capsys) == (
        f"error: no {IDC_FILE} in {server.url}/TCVC_IDC.zip, {server.url}/pretrained_models.zip"
    )
    assert (home / TCVC).is_file() and (home / FLOWNET).is_file()  # what was there is kept
    assert sorted(json.loads((home / "manifest.json").read_text())["files"]) == [TCVC, FLOWNET]
    assert leftovers(home) == []


@pytest.mark.parametrize(
    ("name", "archive"), [(IDC_FILE, "pretrained_models.zip"), (TCVC, "TCVC_IDC.zip")]
)
def test_a_file_of_another_layout_is_named_and_not_installed(
    name, archive, server, home, weights, layout, accept_idc_hash, capsys
):
    if name == IDC_FILE:
        state = idc_state(layout)
        del state["model1.0.weight"]
        problem = "siggraph17-df00044c.pth does not fit IDC: missing keys (1): model1.0.weight"
        member, what = f"pretrained_models/{IDC_FILE}", "the SIGGRAPH'17 colouriser (IDC)"
    else:
        state = broadcast(layout)
        state["weigting.conv9.weight"] = torch.zeros(1)
        problem = "80000_G.pth does not fit TCVC_IDC: unexpected keys (1): weigting.conv9.weight"
        member, what = f"TCVC_IDC/models/{TCVC}", "the released TCVC model (TCVC_IDC)"
    bad = saved(state)
    accept_idc_hash(bad if name == IDC_FILE else weights[IDC_FILE])
    server.files = archives(weights, **{name: bad})
    assert fetch_cli(server) == 1
    assert stderr_line(capsys) == (
        f"error: {name} (from {server.url}/{archive}:{member}) is not {what} in its released "
        f"layout ({problem}); not installed"
    )
    assert not (home / name).exists()
    assert name not in json.loads((home / "manifest.json").read_text())["files"]
    assert leftovers(home) == []


def test_the_siggraph17_hash_in_its_name_is_checked(server, home, weights, capsys):
    server.files = archives(weights)
    assert fetch_cli(server) == 1
    digest = hashlib.sha256(weights[IDC_FILE]).hexdigest()
    assert stderr_line(capsys) == (
        f"error: {IDC_FILE} (from {server.url}/pretrained_models.zip:pretrained_models/"
        f"{IDC_FILE}): its SHA-256 starts {digest[:8]}, not df00044c as its name says (a "
        "corrupt or another file); not installed"
    )
    assert not (home / IDC_FILE).exists() and (home / TCVC).is_file()


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_fetch_from_a_local_folder_or_zip(kind, home, tmp_path, weights, accept_idc_hash):
    accept_idc_hash(weights[IDC_FILE])
    downloaded = tmp_path / "Downloads"
    downloaded.mkdir()
    if kind == "folder":
        (downloaded / TCVC).write_bytes(weights[TCVC])
        (downloaded / "pretrained_models.zip").write_bytes(
            archives(weights)["/pretrained_models.zip"]
        )
        source = downloaded
    else:
        source = downloaded / "all.zip"
        source.write_bytes(zipped({f"w/{name}": data for name, data in weights.items()}))
    assert main(["fetch", "--from", str(source)]) == 0
    assert all((home / name).read_bytes() == data for name, data in weights.items())
    assert source.exists()  # taken, not moved


# ---- list --------------------------------------------------------------------------------------
def test_list_shows_each_file_and_the_command_for_what_is_missing(
    home, weights, accept_idc_hash, capsys
):
    assert format_list().splitlines()[-1] == (
        f"missing: run `python -m tcvc.weights fetch` (or put the files downloaded by hand in "
        f"{home})"
    )
    assert not home.exists()  # listing creates nothing
    accept_idc_hash(weights[IDC_FILE])
    home.mkdir()
    (home / TCVC).write_bytes(weights[TCVC])
    resolve_released(composed("train", ["model.tcvc_weights=released"]))  # verified on first use
    (home / IDC_FILE).write_bytes(weights[IDC_FILE])  # by hand, not yet used
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    sha = hashlib.sha256(weights[TCVC]).hexdigest()[:8]
    size = f"{len(weights[TCVC]) / 1e3:,.1f} kB"
    assert lines[0] == f"weights cache: {home} (TCVC_HOME sets it)"
    assert re.fullmatch(rf"  80000_G.pth +{re.escape(size)}  sha256 {sha} +verified", lines[1])
    assert re.fullmatch(r"  FlowNet2_checkpoint.pth.tar +-  - +missing", lines[2])
    assert lines[3].split()[0] == IDC_FILE and lines[3].endswith(
        "unverified (put there by hand: verified on first use, or by fetch)"
    )
    assert lines[4].startswith("missing: run `python -m tcvc.weights fetch`")
    (home / FLOWNET).write_bytes(weights[FLOWNET])
    assert main(["fetch", "--from", str(home)]) == 0  # verifies what is there, downloads nothing
    assert format_list().splitlines()[-1] == (
        "all verified: ckpt=released, model.flownet_weights=released, model.idc_weights=released "
        "use them"
    )


def test_an_archive_downloaded_before_is_installed_without_downloading_it_again(
    server, home, weights, accept_idc_hash
):
    """A run stopped after an archive's download but before installing: the next takes it."""
    accept_idc_hash(weights[IDC_FILE])
    server.files = archives(weights)
    (home / "downloads").mkdir(parents=True)
    for name, data in server.files.items():
        (home / "downloads" / name.lstrip("/")).write_bytes(data)
    assert fetch_cli(server) == 0
    assert server.requests == []
    assert all((home / name).read_bytes() == data for name, data in weights.items())
    assert leftovers(home) == []


def test_a_file_changed_since_it_was_verified_is_verified_again(
    server, home, weights, accept_idc_hash
):
    """The manifest holds size and modification time: a changed byte (same size) makes the
    file unverified, and `released` then checks it anew (and names it when it fails)."""
    accept_idc_hash(weights[IDC_FILE])
    server.files = archives(weights)
    assert fetch_cli(server) == 0
    path = home / TCVC
    assert next(s for s in status(home=home) if s.name == TCVC).state == "verified"
    data = bytearray(path.read_bytes())
    data[-30] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert next(s for s in status(home=home) if s.name == TCVC).state == "unverified"
    with pytest.raises(UserError, match="remove it and run"):
        released_path(TCVC, home=home)
