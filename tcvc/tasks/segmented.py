"""Segmented colourisation: a film in pieces that survive a kill and spread over workers.

``resume=true``, ``workers=N`` / ``devices=[...]`` and ``shard=k/n`` colour the input segment by
segment (``tcvc.inference.segments``: runs of whole clips starting where every pass has an
anchor; colouring them one by one gives every frame the colours of one run). The work lives in
a folder beside the output::

    <output's folder>/.<output name>.tcvc-work/
        plan.json          the input, the settings that decide its frames, its frames (their
                           count and grid, so no segment counts them again), scene cuts and
                           segments
        pieces/00003.mp4   segment 3, complete (written atomically; for a frame-folder output a
                           folder of PNG frames, pieces/00003/)
        run.lock           held while a run works here (``flock``: gone with the process, even
                           a killed one): a second run on the same output is refused in one
                           line; shards share it

A guided run (``references``, ``hints``) starts its segments only at scene cuts: its hints are
carried along a shot, so a segment must not cut one (a film without cuts is then one segment,
and workers and shards have nothing to share).

A run colours the segments that have no piece yet, joins the pieces into the output (H.264
pieces by stream copy, with the input's audio and other streams; PNG frames renumbered) and
removes the folder. A killed run (Ctrl-C, a crash, OOM, a power cut) leaves its finished pieces:
the same command with ``resume=true`` goes on from them, and a changed option or input is
refused in one line. ``workers=N`` colours the segments in N processes (``devices=[cuda:0,
cuda:1]``: one per GPU); ``shard=k/n`` colours every n-th segment from the k-th, so n cluster
jobs (``python colorize.py -m hydra/launcher=slurm shard=0/4,1/4,2/4,3/4 ...``) share a film,
and the one that finds every piece done joins them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import queue
import shutil
import signal
import socket
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tcvc.errors import UserError
from tcvc.inference import (
    FrameGuidance,
    KnownCuts,
    frame_to_L,
    guidance_within,
    network_fn,
    network_size,
)
from tcvc.inference.segments import Segment, plan_segments, scan_cuts
from tcvc.io import FrameIndex, join_pieces
from tcvc.tasks.colorize_job import (
    ColorizeJob,
    FrameRange,
    finished_line,
    log_start,
    progress_bar,
)

log = logging.getLogger("tcvc")

__all__ = ["Plan", "WorkFolder", "colorize_segmented", "work_folder"]

PLAN_VERSION = 2


def work_folder(target: Path) -> Path:
    """The work folder of an output: ``.<name>.tcvc-work`` beside it."""
    return target.parent / f".{target.name}.tcvc-work"


@dataclass(frozen=True)
class Plan:
    """What a segmented run makes: its fingerprint (input and settings), the coloured range of
    the input, its size and rate, the scene cuts (indices in the range), the segments, and the
    input's frame index (``tcvc.io.FrameIndex``; None for a frame folder), which every segment's
    reader reuses instead of counting the input's frames again. A guided run's segments start
    only at scene cuts (``plan_segments(only_at_cuts=True)``)."""

    fingerprint: dict[str, Any]
    input_frames: int  # the input's frames (the range is part of them)
    start: int  # the range's first frame, an index of the input
    num_frames: int
    fps: float
    height: int
    width: int
    cuts: list[int]
    segments: list[Segment]
    frame_index: FrameIndex | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            **dataclasses.asdict(self),
            "segments": [dataclasses.astuple(s) for s in self.segments],
            "frame_index": None if self.frame_index is None else self.frame_index.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        fields = {k: v for k, v in data.items() if k != "version"}
        fields["segments"] = [
            Segment(index, start, stop, shares_anchor, tuple(cuts))
            for index, start, stop, shares_anchor, cuts in data["segments"]
        ]
        if fields["frame_index"] is not None:
            fields["frame_index"] = FrameIndex.from_json(fields["frame_index"])
        return cls(**fields)


class WorkFolder:
    """The work folder of ``job``'s output: the plan and the pieces (see the module docstring)."""

    def __init__(self, job: ColorizeJob) -> None:
        self.target = job.target
        self.root = work_folder(job.target)
        self.pieces = self.root / "pieces"
        self.kind = job.kind

    def piece(self, index: int) -> Path:
        return self.pieces / (f"{index:05d}.mp4" if self.kind == "video" else f"{index:05d}")

    def done(self, segment: Segment) -> bool:
        return self.piece(segment.index).exists()

    def read_plan(self) -> Plan | None:
        file = self.root / "plan.json"
        if not file.is_file():
            return None
        try:
            data = json.loads(file.read_text())
            if data.get("version") != PLAN_VERSION:
                raise ValueError(f"version {data.get('version')}")
            return Plan.from_json(data)
        except (ValueError, KeyError, TypeError) as error:
            raise UserError(
                f"{file}: not a plan this version can resume ({error}); remove {self.root} to "
                "start over"
            ) from error

    def write_plan(self, plan: Plan) -> Plan:
        """Write ``plan``, unless another process (a shard) wrote one first: the first plan
        written is the plan (a hard link cannot replace a file); returns the one in force."""
        self.pieces.mkdir(parents=True, exist_ok=True)
        temp = self.root / f".plan.json.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex}"
        temp.write_text(json.dumps(plan.to_json(), indent=1))
        try:
            os.link(temp, self.root / "plan.json")
        except FileExistsError:
            return self.read_plan()
        finally:
            temp.unlink(missing_ok=True)
        return plan

    def finished(self, plan: Plan) -> int:
        return sum(self.done(s) for s in plan.segments)

    def finished_pieces(self) -> list[Path]:
        """The finished pieces there (named by their segment's index), in order."""
        return sorted(self.pieces.glob("[0-9]*")) if self.pieces.is_dir() else []

    def remove_partials(self) -> None:
        """Partial pieces of a killed run (the writers' hidden temporary files)."""
        if self.pieces.is_dir():
            _remove_all(self.pieces.glob(".*"))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self, *, shared: bool):
        """Hold ``run.lock`` (the folder made if missing): exclusively for a run, ``shared`` for
        a shard (shards of one film work side by side); ``UserError`` when another process
        holds it in a way that excludes this one. The kernel releases it when the process
        ends, however it ends."""
        self.root.mkdir(parents=True, exist_ok=True)
        # read and write: NFS emulates flock with byte-range locks, and a shared one needs a
        # file open for reading
        with open(self.root / "run.lock", "a+") as file:
            try:
                fcntl.flock(file, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(
                    f"{self.target}: another colorize run is working on this output "
                    f"({self.root}); wait for it to end or stop it"
                ) from None
            except OSError as error:  # a file system without flock (Lustre mounted noflock)
                log.warning(
                    "%s: cannot lock run.lock (%s): a second run on this output is not refused",
                    self.root,
                    error.strerror or error,
                )
            yield


def _remove_all(paths) -> None:
    """Files and folders (a frame-folder output's pieces are folders)."""
    for path in paths:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def input_identity(source: Path) -> dict[str, Any]:
    """The input as a run saw it: path, size and modification time (a frame folder: its files)."""
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file())
        stats = [p.stat() for p in files]
        return {
            "path": str(source.resolve()),
            "files": len(files),
            "bytes": sum(s.st_size for s in stats),
            "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
        }
    stat = source.stat()
    return {"path": str(source.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def fingerprint(job: ColorizeJob) -> dict[str, Any]:
    if not job.source.exists():
        raise UserError(f"{job.source}: no such file or folder")
    # through JSON, so that a plan read back compares equal (tuples become lists)
    return json.loads(json.dumps({"input": input_identity(job.source), **job.settings()}))


def make_plan(job: ColorizeJob, identity: dict[str, Any]) -> Plan:
    """Probe the input, find its scene cuts (a decoding pass, without the network, when scene
    cuts are on) and cut it into segments of at least ``segment_seconds``."""
    with job.open_reader() as probe:
        info, index = probe.info, probe.index
    span = job.frame_range(info.num_frames, info.fps)
    network_size(info.height, info.width, job.options.resolution)  # fails early on a bad size
    # read here once: a bad reference or hint stops the run before the scan and the plan, and
    # the guided frames and resized references are logged once (later reads are quiet)
    guided = bool(job.guided and job.guidance(info.num_frames, (info.height, info.width), span))
    options = job.options
    if options.scene_cut_threshold is None:
        num_frames, cuts = len(span), []
    else:
        with (
            job.open_reader(start=span.start, stop=span.stop, index=index) as reader,
            progress_bar(job, total=len(span), desc=f"{job.source.name}: scene cuts") as bar,
        ):

            def lightness():
                for frame in reader:
                    bar.update(1)
                    yield frame_to_L(frame, lightness=options.lightness, device=options.device)

            num_frames, cuts = scan_cuts(lightness(), threshold=options.scene_cut_threshold)
    min_frames = max(1, round(job.segment_seconds * info.fps))
    segments = plan_segments(
        num_frames, options.intervals, cuts=cuts, min_frames=min_frames, only_at_cuts=guided
    )
    if guided:
        log.info(
            "guided: segments start only at scene cuts (the hints carried along a shot must "
            "not be cut): %d segment(s)",
            len(segments),
        )
    return Plan(
        fingerprint=identity,
        input_frames=info.num_frames,
        start=span.start,
        num_frames=num_frames,
        fps=info.fps,
        height=info.height,
        width=info.width,
        cuts=cuts,
        segments=segments,
        frame_index=index,
    )


def _changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [key for key in dict.fromkeys([*old, *new]) if old.get(key) != new.get(key)]


def load_or_make_plan(job: ColorizeJob, work: WorkFolder) -> tuple[Plan, bool]:
    """The work folder's plan when its fingerprint is this job's (``UserError`` naming what
    changed when not), else a new one, written; and whether it was there before."""
    identity = fingerprint(job)
    plan = work.read_plan()
    if plan is not None:
        changed = _changes(plan.fingerprint, identity)
        if changed:
            what = ", ".join("the input" if key == "input" else key for key in changed)
            raise UserError(
                f"{work.root} holds a run with another {what}; run with the same options to "
                f"resume it, or remove the folder to start over"
            )
        return plan, True
    # no plan says what they are: not this run's to join. A shard leaves them: they may be
    # another shard's, whose plan this one does not see yet
    stale = work.finished_pieces() if job.shard is None else []
    if stale:
        log.warning("%s: %d piece(s) without a plan, removed", work.root, len(stale))
        _remove_all(stale)
    plan = work.write_plan(make_plan(job, identity))
    changed = _changes(plan.fingerprint, identity)
    if changed:  # a shard with other options wrote its plan first
        raise UserError(f"{work.root} holds a run with another {', '.join(changed)}")
    return plan, False


class PieceCloser:
    """Finishes pieces (the encoder's flush, the rename into place) on a thread while the next
    segment is coloured, one at a time: x264 holds its look-ahead of frames until the flush, so
    finishing a piece in line would stall the network, as a streamed run never does."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piece-closer")
        self._pending: Future | None = None

    def close(self, writer) -> None:
        try:
            self.wait()
        except BaseException:
            writer.abort()
            raise
        self._pending = self._executor.submit(writer.close)

    def wait(self) -> None:
        """Until the piece being finished is in place (its error raised here)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def shutdown(self) -> None:
        try:
            self.wait()
        finally:
            self._executor.shutdown(wait=True)


def plan_guidance(job: ColorizeJob, plan: Plan) -> dict[int, FrameGuidance]:
    """The guidance of ``job`` for the plan's range, by index in it ({} unguided), read
    quietly (``make_plan`` logged it); each process that colours segments reads its own."""
    if not job.guided:
        return {}
    span = FrameRange(plan.start, plan.start + plan.num_frames)
    return job.guidance(plan.input_frames, (plan.height, plan.width), span, quiet=True)


def colour_segment(
    job: ColorizeJob,
    plan: Plan,
    work: WorkFolder,
    segment: Segment,
    net_fn,
    bar,
    closer: PieceCloser,
    guidance: dict[int, FrameGuidance],
) -> None:
    """One segment's frames coloured into its piece (atomic: complete or absent); ``closer``
    finishes the piece. ``guidance``: the plan's (``plan_guidance``)."""
    first = plan.start + segment.start
    writer = job.open_writer(
        work.piece(segment.index),
        fps=plan.fps,
        frame_size=(plan.height, plan.width),
        audio_from=None,
        overwrite=False,
    )
    try:
        with job.open_reader(
            start=first, stop=plan.start + segment.stop, index=plan.frame_index
        ) as reader:
            job.colour(
                net_fn,
                reader,
                writer,
                bar=bar,
                detector=KnownCuts(segment.local_cuts()),
                starts_at_shared_anchor=segment.shares_anchor,
                guidance=guidance_within(guidance, segment.start, segment.stop),
            )
        if writer.frames_written != len(segment.output):
            raise UserError(
                f"{job.source}: segment {segment.index} (frames {first}–"
                f"{plan.start + segment.stop - 1}) gave {writer.frames_written} frames, expected "
                f"{len(segment.output)}: the input cannot be read as it was planned"
            )
    except BaseException:
        writer.abort()
        raise
    closer.close(writer)


def colour_segments(job, plan, work, segments, net_fn, bar, guidance) -> None:
    """``segments`` one after another in this process, each piece finished behind the next;
    ``guidance``: the plan's (``plan_guidance``)."""
    closer = PieceCloser()
    try:
        for segment in segments:
            colour_segment(job, plan, work, segment, net_fn, bar, closer, guidance)
    finally:
        closer.shutdown()


def colorize_segmented(job: ColorizeJob, *, net: torch.nn.Module | None = None) -> dict[str, Any]:
    """Colour ``job``'s input in segments (see the module docstring); returns ``colorize``'s
    summary plus ``"segments"`` ({"coloured": here, "before": found done, "total"}) and
    ``"joined"`` (False: a shard that left the join to another)."""
    work = WorkFolder(job)
    started = time.perf_counter()
    made_here = not work.root.exists()
    plan = None
    with work.lock(shared=job.shard is not None):
        try:
            plan, resumed = load_or_make_plan(job, work)
            if job.shard is None:
                work.remove_partials()  # no other process writes here
            segments = plan.segments
            if job.shard is not None:
                k, n = job.shard
                segments = [s for s in segments if s.index % n == k]
            before = work.finished(plan)
            todo = [s for s in segments if not work.done(s)]
            if resumed:
                log.info(
                    "%s: resuming, %d of %d segments done before",
                    work.root,
                    before,
                    len(plan.segments),
                )
            # the plan has what log_start reads (num_frames, fps, height, width)
            log_start(job, plan, range(plan.start, plan.start + plan.num_frames))
            log.info("%d segments in %s", len(plan.segments), work.root)
            done_frames = sum(len(s.output) for s in segments if work.done(s))
            total = sum(len(s.output) for s in segments)
            with progress_bar(job, total=total, initial=done_frames, desc=job.source.name) as bar:
                if job.workers > 1 and len(todo) > 1:
                    colour_in_workers(job, plan, work, todo, net=net, bar=bar)
                elif todo:
                    if net is None:
                        net = job.load_net()
                    net = net.to(job.options.device).eval()
                    fn = network_fn(net, job.options)
                    colour_segments(job, plan, work, todo, fn, bar, plan_guidance(job, plan))
            joined = join(job, plan, work)
        except BaseException:
            _keep_or_remove(job, work, made_here=made_here, planned=plan is not None)
            raise
    seconds = time.perf_counter() - started
    here = sum(len(s.output) for s in todo)  # frames coloured by this run
    frames = plan.num_frames if joined else here
    # plan: fps, height, width
    message = finished_line(job, plan, here, seconds, plan.cuts, first=plan.start)
    if joined and here != plan.num_frames:
        message += f" (joined with {plan.num_frames - here} frames coloured before)"
    if not joined:
        done = work.finished(plan)
        message = (
            f"shard {job.shard[0]}/{job.shard[1]}: coloured {len(todo)} segment(s); "
            f"{done} of {len(plan.segments)} done, the last shard to finish joins them into "
            f"{job.target}"
        )
    print(message)
    return {
        "frames": frames,
        "seconds": seconds,
        "output": str(job.target),
        "cuts": list(plan.cuts),
        "stopped_at": None,
        "segments": {"coloured": len(todo), "before": before, "total": len(plan.segments)},
        "joined": joined,
    }


def _keep_or_remove(job: ColorizeJob, work: WorkFolder, *, made_here: bool, planned: bool) -> None:
    """After a failure: keep the work folder when a resume can use it, else remove it; a
    folder an earlier run made is always kept (its pieces are that run's work), quietly when
    this run was refused before it had a plan (its own error says why)."""
    if not work.root.exists() or not (made_here or planned):
        return
    resumable = job.resume or job.shard is not None or not made_here
    if resumable and (work.root / "plan.json").is_file():
        log.warning(
            "kept %s (%d finished piece(s)): run again with resume=true to go on; remove the "
            "folder to start over",
            work.root,
            len(work.finished_pieces()),
        )
    elif made_here and job.shard is None:  # shards started together all see no folder first
        work.remove()


# ---- joining ---------------------------------------------------------------------------------


def join(job: ColorizeJob, plan: Plan, work: WorkFolder) -> bool:
    """The pieces into the output, when every segment has one; then the work folder removed.
    A shard that finds another joining (its lock) leaves it; returns whether this one joined."""
    if work.finished(plan) < len(plan.segments):
        return False
    lock = work.root / "join.lock"
    if not _take_lock(lock, force=job.shard is None):
        log.info("%s: another process is joining the pieces (%s)", job.target, lock)
        return False
    try:
        frames = _join_pieces(job, plan, work)
    except BaseException:
        lock.unlink(missing_ok=True)  # a later run joins them again
        raise
    if frames != plan.num_frames:
        lock.unlink(missing_ok=True)
        raise UserError(f"{job.target}: joined {frames} frames, the plan has {plan.num_frames}")
    work.remove()
    return True


def _take_lock(lock: Path, *, force: bool) -> bool:
    """Create ``lock`` (holding this host and pid); when it exists: take it over if ``force``
    (no other process joins: a killed join) or if its holder, a process of this host, is dead;
    else False."""
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = lock.read_text().split() if lock.is_file() else []
            dead = len(holder) == 2 and holder[0] == socket.gethostname()
            dead = dead and not _alive(int(holder[1]))
            if not (force or dead):
                return False
            log.warning("%s: taking over the join of %s", lock, " ".join(holder) or "nobody")
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w") as file:
            file.write(me)
        return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _join_pieces(job: ColorizeJob, plan: Plan, work: WorkFolder) -> int:
    pieces = [work.piece(s.index) for s in plan.segments]
    job.target.parent.mkdir(parents=True, exist_ok=True)
    if job.kind == "video":
        frames = join_pieces(
            pieces,
            job.target,
            audio_from=None if job.source.is_dir() else job.source,
            source_start=plan.start / plan.fps,
            overwrite=job.overwrite,
        )
    else:
        frames = join_frame_folders(pieces, job.target)
    return frames


def join_frame_folders(pieces: list[Path], target: Path) -> int:
    """The PNG frames of the pieces, renumbered from 0 (``00000.png`` …, as
    ``FrameFolderWriter`` names them) into the folder ``target``, atomically: hard links in a
    hidden folder beside it (copies across file systems), renamed into place."""
    for stale in target.parent.glob(f".{target.name}.joining-*"):  # of a killed join
        shutil.rmtree(stale, ignore_errors=True)
    temp = target.parent / f".{target.name}.joining-{os.getpid()}"
    temp.mkdir(parents=True)
    count = 0
    try:
        for piece in pieces:
            for frame in sorted(piece.iterdir(), key=lambda file: int(file.stem)):
                name = temp / f"{count:05d}{frame.suffix}"
                try:
                    os.link(frame, name)
                except OSError:
                    shutil.copy2(frame, name)
                count += 1
        old = None
        if target.exists() and any(target.iterdir()):
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.replace(target, old)
        os.replace(temp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return count


# ---- workers ---------------------------------------------------------------------------------


class _QueueBar:
    """A worker's progress bar: frames reported to the parent, which draws the one bar."""

    def __init__(self, events, worker: int) -> None:
        self.events, self.worker = events, worker

    def update(self, count: int = 1) -> None:
        self.events.put(("frames", self.worker, count))


def _die_with_parent(parent: int) -> None:
    """Have the kernel end this process when its parent dies (Linux ``PR_SET_PDEATHSIG``): a
    parent killed by a signal or the OOM killer leaves no worker colouring on."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the workers check their parent between segments
    if os.getppid() != parent:  # it died before the call above
        os._exit(1)


def _worker(
    job: ColorizeJob, plan: Plan, net, tasks, events, worker: int, threads: int, parent: int
) -> None:
    """A worker process: takes segment indices from ``tasks`` until None, colours each."""
    _die_with_parent(parent)
    torch.set_num_threads(threads)
    try:
        net = (net if net is not None else job.load_net()).to(job.options.device).eval()
        fn = network_fn(net, job.options)
        work = WorkFolder(job)
        bar = _QueueBar(events, worker)
        guidance = plan_guidance(job, plan)
        closer = PieceCloser()
        try:
            while (index := tasks.get()) is not None and os.getppid() == parent:
                segment = plan.segments[index]
                colour_segment(job, plan, work, segment, fn, bar, closer, guidance)
        finally:
            closer.shutdown()
        events.put(("done", worker, None))
    except KeyboardInterrupt:
        events.put(("stopped", worker, None))
    except Exception as error:  # noqa: BLE001 (reported by the parent, in one line)
        from tcvc.tasks.errors import one_line

        events.put(("error", worker, f"{type(error).__name__}: {one_line(error)}"))


def colour_in_workers(job, plan, work, todo, *, net, bar) -> None:
    """The segments ``todo`` coloured by ``job.workers`` processes (``spawn``), each taking
    the next segment as it finishes one; the first failure stops the others and is raised."""
    context = torch.multiprocessing.get_context("spawn")
    tasks, events = context.Queue(), context.Queue()
    for segment in todo:
        tasks.put(segment.index)
    count = min(job.workers, len(todo))
    for _ in range(count):
        tasks.put(None)
    devices = list(job.devices or [str(job.options.device)] * count)
    threads = max(1, (os.cpu_count() or 1) // count)
    if net is not None:
        net = net.cpu()
    processes = [
        context.Process(
            target=_worker,
            args=(job.with_device(devices[k]), plan, net, tasks, events, k, threads, os.getpid()),
            daemon=True,
        )
        for k in range(count)
    ]
    for process in processes:
        process.start()
    finished: set[int] = set()
    try:
        while len(finished) < count:
            try:
                kind, worker, value = events.get(timeout=1.0)
            except queue.Empty:
                for k, process in enumerate(processes):
                    if k not in finished and process.exitcode not in (None, 0):
                        raise UserError(
                            f"worker {k} ({devices[k]}) died (exit code {process.exitcode})"
                        ) from None
                continue
            if kind == "frames":
                bar.update(value)
            elif kind == "done":
                finished.add(worker)
            elif kind == "error":
                raise UserError(f"worker {worker} ({devices[worker]}): {value}")
            elif kind == "stopped":
                raise KeyboardInterrupt
    finally:
        for process in processes:
            if process.is_alive() and len(finished) < count:
                process.terminate()
        for process in processes:
            process.join(timeout=30)
