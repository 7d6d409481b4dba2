"""Audio for the video writer: the first audio stream of a source file, copied (or transcoded to
AAC) into the output mp4 in step with its video frames."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import av.error

from tcvc.io._common import VideoError, _ffmpeg_reason, _open_input

log = logging.getLogger(__name__)

# Audio codecs copied into mp4 as they are; anything else is transcoded to AAC.
_MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus"})


class _AudioCopy:
    """Copies the first audio stream of a file into an output container, in step with the video.

    Packets are muxed up to the current video time as frames arrive, so the two streams stay
    interleaved and memory stays constant however long the video is.
    """

    def __init__(self, source: Path) -> None:
        self.source = source
        if not source.exists():
            raise VideoError(f"{source}: no such file (asked to copy its audio)")
        if source.is_dir():
            log.info("%s is a frame folder: no audio to copy", source)
            self._input = None
            return
        self._input = _open_input(source)
        if not self._input.streams.audio:
            log.info("%s has no audio stream: writing video only", source)
            self.close()
            return
        self._in = self._input.streams.audio[0]
        # Our video starts at 0; shift the audio by the source video's start to keep them in sync.
        offset = 0.0
        if self._input.streams.video and self._input.streams.video[0].start_time is not None:
            video = self._input.streams.video[0]
            offset = float(video.start_time * video.time_base)
        self._offset = offset
        self._packets = None
        self._pending = None
        self._remux = False
        self._out = None

    @property
    def active(self) -> bool:
        return self._input is not None

    def add_to(self, output: av.container.OutputContainer) -> None:
        if not self.active:
            return
        name = self._in.codec_context.name
        self._remux = name in _MP4_AUDIO_CODECS and name in output.supported_codecs
        try:
            if self._remux:
                self._out = output.add_stream_from_template(self._in)
            else:
                self._out = self._add_aac(output)
                self._samples = None
        except (av.error.FFmpegError, ValueError) as error:
            raise VideoError(f"{self.source}: cannot copy its audio ({name}): {error}") from error
        self._output = output
        self._packets = self._input.demux(self._in)
        log.info(
            "%s audio from %s (%s)",
            "copying" if self._remux else "transcoding to AAC the",
            self.source,
            name,
        )

    def _add_aac(self, output: av.container.OutputContainer):
        context = self._in.codec_context
        layout = context.layout.name
        if layout.endswith("channels"):  # no channel order ("1 channels"): AAC needs a named one
            layout = "mono" if context.channels == 1 else "stereo"
        stream = output.add_stream("aac", rate=context.sample_rate)
        stream.layout = layout
        stream.bit_rate = 192_000
        try:
            stream.codec_context.open()  # fail here, not later when the header is written
        except av.error.FFmpegError:
            if layout in ("mono", "stereo"):
                raise
            log.warning(
                "%s: AAC cannot encode the layout %s; downmixing to stereo", self.source, layout
            )
            stream.layout = "stereo"
            stream.codec_context.open()
        return stream

    def _time(self, packet) -> float | None:
        stamp = packet.pts if packet.pts is not None else packet.dts
        return None if stamp is None else float(stamp * packet.time_base) - self._offset

    def copy_until(self, seconds: float) -> None:
        """Mux every audio packet that starts before `seconds` of the output's timeline."""
        if not self.active or self._packets is None:
            return
        try:
            while True:
                if self._pending is None:
                    self._pending = next(self._packets, None)
                    if self._pending is None:
                        self._packets = None
                        return
                packet = self._pending
                if not packet.size:  # the demuxer's end-of-stream marker
                    self._pending = None
                    continue
                start = self._time(packet)
                if start is not None and start >= seconds:
                    return
                self._pending = None
                self._mux(packet)
        except av.error.FFmpegError as error:
            log.warning(
                "%s: audio copy stopped at %.2f s (%s); the video continues without it",
                self.source,
                seconds,
                _ffmpeg_reason(error),
            )
            self._packets = None

    def _mux(self, packet) -> None:
        if self._remux:
            shift = round(self._offset / packet.time_base) if self._offset else 0
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self._out
            self._output.mux(packet)
            return
        for frame in packet.decode():
            if self._samples is None:  # the first frame sets the start; then samples run on
                start = float(frame.time) - self._offset if frame.time is not None else 0.0
                self._samples = max(round(start * frame.sample_rate), 0)
            frame.pts = self._samples
            frame.time_base = Fraction(1, frame.sample_rate)
            self._samples += frame.samples
            self._output.mux(self._out.encode(frame))

    def flush(self) -> None:
        if self.active and self._out is not None and not self._remux:
            try:
                self._output.mux(self._out.encode(None))
            except av.error.FFmpegError as error:
                log.warning("%s: cannot finish the audio: %s", self.source, _ffmpeg_reason(error))

    def close(self) -> None:
        if self._input is not None:
            self._input.close()
            self._input = None
