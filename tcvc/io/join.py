"""Joining pieces: mp4 pieces that `VideoWriter` wrote one after another (a run done in parts, a
resumed one) become one mp4 by stream copy, without encoding again, with the source's other
streams (audio, subtitles, metadata) copied as `VideoWriter` copies them."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from tcvc.io._common import VideoError, _check_target, _ffmpeg_reason, _open_input, _partial_name
from tcvc.io.streams import _StreamCopy

log = logging.getLogger(__name__)

__all__ = ["join_pieces"]


@dataclass(frozen=True)
class _Piece:
    """What must agree between pieces, and what the join needs of each."""

    path: Path
    codec: str
    width: int
    height: int
    pixel_format: str
    rate: Fraction
    extradata: bytes
    time_base: Fraction
    first_pts: int  # the first packet's (a key frame's) presentation time
    delay: Fraction  # how far its decode times run ahead of it, in frames (B-frame reordering)

    def differs_from(self, other: _Piece) -> str | None:
        """How this piece cannot follow `other` in one stream, or None."""
        for what, mine, theirs in (
            ("codec", self.codec, other.codec),
            ("size", f"{self.width}×{self.height}", f"{other.width}×{other.height}"),
            ("pixel format", self.pixel_format, other.pixel_format),
            ("frame rate", f"{float(self.rate):g} fps", f"{float(other.rate):g} fps"),
        ):
            if mine != theirs:
                return f"its {what} is {mine}, the first piece's {theirs}"
        if self.extradata != other.extradata:
            return "it was encoded with other settings (its H.264 parameter sets differ)"
        return None


def _probe(path: Path) -> _Piece:
    if not path.is_file():
        raise VideoError(f"{path}: no such file (a piece to join)")
    with _open_input(path) as container:
        if not container.streams.video:
            raise VideoError(f"{path}: has no video stream (a piece to join)")
        stream = container.streams.video[0]
        context = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        first = next((p for p in container.demux(stream) if p.size), None)
        if first is None or first.pts is None or first.dts is None or not rate:
            raise VideoError(f"{path}: holds no timed video frames (a piece to join)")
        if not first.is_keyframe:
            raise VideoError(
                f"{path}: does not start with a key frame, so it cannot be joined to others"
            )
        step = 1 / (Fraction(rate) * stream.time_base)
        return _Piece(
            path=path,
            codec=context.name,
            width=context.width,
            height=context.height,
            pixel_format=context.format.name if context.format else "unknown",
            rate=Fraction(rate),
            extradata=bytes(context.extradata or b""),
            time_base=Fraction(stream.time_base),
            first_pts=first.pts,
            delay=(first.pts - first.dts) / step,
        )


def join_pieces(
    pieces: Sequence[str | Path],
    target: str | Path,
    *,
    audio_from: str | Path | None = None,
    source_start: float = 0.0,
    overwrite: bool = False,
    faststart: bool = True,
) -> int:
    """Join mp4 pieces into `target` by stream copy; returns the number of frames.

    The pieces are H.264 mp4s as `VideoWriter` writes them: each starts with a key frame (so it
    decodes on its own), and all have the same size, frame rate, pixel format and encoder
    settings. Every video packet is remuxed, shifted by the frames before its piece: decoding
    the result gives exactly the frames of decoding the pieces one after another. Decode times
    are laid out again on one grid, as far ahead of the frames as the most reordering piece
    needs, so they rise steadily across the joins (a B-frame piece's start before 0, a short
    piece with no reordering). A piece that differs: VideoError naming it, before anything is
    written.

    `audio_from` and `source_start` are `VideoWriter`'s: the source's audio, subtitles and
    metadata from `source_start` seconds on, cut at the end of the joined video. The output is
    atomic (a hidden partial file, renamed into place when complete, removed on a failure);
    an existing `target` is kept unless `overwrite`.
    """
    paths = [Path(piece) for piece in pieces]
    target = Path(target)
    if not paths:
        raise VideoError(f"{target}: no pieces to join")
    if target.suffix.lower() != ".mp4":
        raise VideoError(f"{target}: pieces are joined into .mp4 files only")
    probes = [_probe(path) for path in paths]
    for probe in probes[1:]:
        problem = probe.differs_from(probes[0])
        if problem is not None:
            raise VideoError(f"{probe.path}: cannot be joined to {probes[0].path}: {problem}")
    _check_target(target, overwrite=overwrite, folder=False)
    streams = _StreamCopy(Path(audio_from), start=source_start) if audio_from is not None else None
    temp = _partial_name(target, ".mp4")
    options = {"movflags": "+faststart"} if faststart else {}
    try:
        with av.open(str(temp), mode="w", format="mp4", container_options=options) as output:
            frames = _remux(probes, output, streams)
        os.replace(temp, target)
    except av.error.FFmpegError as error:
        temp.unlink(missing_ok=True)
        raise VideoError(f"{target}: cannot join the pieces: {_ffmpeg_reason(error)}") from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        if streams is not None:
            streams.close()
    log.info("joined %d pieces, %d frames: %s", len(paths), frames, target)
    return frames


def _remux(
    probes: list[_Piece], output: av.container.OutputContainer, streams: _StreamCopy | None
) -> int:
    """Every piece's video packets into `output`, one after another; returns the frame count."""
    first = probes[0]
    time_base = first.time_base
    step = 1 / (first.rate * time_base)  # one frame, in the output's time base
    delay = max(max(probe.delay for probe in probes), Fraction(0))
    with _open_input(first.path) as template:
        video = output.add_stream_from_template(template.streams.video[0])
    video.time_base = time_base
    if streams is not None:
        streams.add_to(output, video)
    frames = 0  # frames muxed so far: the next piece starts there
    for probe in probes:
        start = frames
        with _open_input(probe.path) as container:
            for packet in container.demux(container.streams.video[0]):
                if not packet.size:
                    continue
                pts = Fraction(packet.pts - probe.first_pts) * probe.time_base / time_base
                packet.pts = round(start * step + pts)
                packet.dts = round((frames - delay) * step)  # the frames-th in decode order
                if packet.dts > packet.pts:
                    raise VideoError(
                        f"{probe.path}: its frame {frames - start} is decoded after it is shown "
                        "(timestamps that stream copy cannot keep)"
                    )
                packet.duration = round(step)
                packet.time_base = time_base
                packet.stream = video
                output.mux(packet)
                frames += 1
                if streams is not None:
                    streams.copy_until(float(frames * step * time_base))
    if streams is not None:
        streams.copy_until(float(frames * step * time_base))
        streams.flush()
    return frames
