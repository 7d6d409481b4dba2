"""The other streams of a source, copied beside the video a writer makes: every audio stream, the
subtitles, the data streams mp4 can carry, and the container's metadata, in a time window.

`_StreamCopy(source, start=seconds)` takes the source from `start` seconds after its first video
frame on (that moment becomes the output's 0); the writer calls `add_to(output, video)` once,
`copy_until(t)` as its video reaches `t` seconds (so the streams stay interleaved and memory stays
constant however long the video is), then `flush()` and `close()`.

What goes where, into an mp4:

- audio: remuxed as it is when mp4 takes its codec (aac, mp3, ac3, eac3, alac, opus), otherwise
  transcoded to AAC. A remuxed packet that straddles the window's start is kept with a negative
  time, and so is the one before it (the decoder's pre-roll): the mp4's edit list hides what
  comes before 0, as it hides an encoder's priming. Transcoded audio is cut at the sample.
- subtitles: mov_text is remuxed; other text formats (srt, ass, webvtt, ...) are converted to
  mov_text, the only text format mp4 players read; bitmap ones (DVD, Blu-ray) are skipped with a
  log line. A subtitle shown across the window's start is shown from 0.
- data: remuxed when mp4 takes its codec, else skipped with a log line. A timecode (mov's tmcd
  track, or the video's `timecode` tag) goes with the output video's `timecode` tag, from which
  the mp4 muxer writes its own tmcd track (not for a window that starts later: it would be
  wrong there).
- metadata: the container's tags (title, artist, comment, ...), not those that describe the old
  file (its brand, encoder), and each stream's language and title.
- the first video stream is the one being replaced; other video streams and attachments are
  skipped with a log line.

Everything is cut at the end of the written video: a packet that starts before it is kept (a
remuxed one whole; transcoded audio at the sample).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
from av.subtitles.subtitle import SubtitleSet

from tcvc.io._common import VideoError, _ffmpeg_reason, _open_input

log = logging.getLogger(__name__)

# Audio codecs copied into mp4 as they are; anything else is transcoded to AAC.
_MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus"})
# Container tags that describe the file rather than the film: the new file gets its own.
_FILE_TAGS = frozenset({"major_brand", "minor_version", "compatible_brands", "encoder", "duration"})
_STREAM_TAGS = ("language", "title")
_MS = Fraction(1, 1000)


def _name(stream: av.stream.Stream) -> str:
    """A stream's codec name for messages ("aac", "subrip"; "unknown" for a codec-less one)."""
    context = stream.codec_context
    name = context.name if context is not None else stream.name
    return name or stream.metadata.get("handler_name") or "unknown"


def _describe(stream: av.stream.Stream) -> str:
    language = stream.metadata.get("language")
    return f"{stream.type} #{stream.index} ({_name(stream)}{', ' + language if language else ''})"


def _copy_tags(source: av.stream.Stream, target: av.stream.Stream) -> None:
    for tag in _STREAM_TAGS:
        if tag in source.metadata:
            target.metadata[tag] = source.metadata[tag]


class _Copy:
    """One source stream into the output: `write` takes its packets in file order."""

    def __init__(self, stream: av.stream.Stream, origin: float) -> None:
        self.input = stream
        self.origin = origin  # the source time (seconds) that is the output's 0

    def seconds(self, packet: av.Packet) -> float | None:
        """Where `packet` starts on the output's timeline; None when it has no timestamp."""
        stamp = packet.pts if packet.pts is not None else packet.dts
        return None if stamp is None else float(stamp * packet.time_base) - self.origin

    def _span(self, packet: av.Packet) -> tuple[float | None, float | None]:
        start = self.seconds(packet)
        duration = float(packet.duration * packet.time_base) if packet.duration else 0.0
        return start, None if start is None else start + duration

    def write(self, packet: av.Packet, output: av.container.OutputContainer) -> None:
        raise NotImplementedError

    def reach(self, seconds: float, output: av.container.OutputContainer) -> None:
        """The video has reached `seconds` (a transcoded stream encodes what ends by then)."""

    def flush(self, output: av.container.OutputContainer, end: float | None) -> None:
        """The video ended at `end` seconds: write whatever is still held, cut there."""


class _Remux(_Copy):
    """Packets copied as they are, shifted to the output's timeline. Subtitles shown across the
    window's start are shown from 0; other packets that end before it are dropped, but for the
    last audio packet before it: the decoder's pre-roll (AAC's first frame needs the one before;
    the mp4's edit list hides it, as it hides an encoder's priming)."""

    def __init__(self, stream, origin, output) -> None:
        super().__init__(stream, origin)
        self.output_stream = output.add_stream_from_template(stream)
        _copy_tags(stream, self.output_stream)
        self._preroll: av.Packet | None = None

    def write(self, packet, output) -> None:
        start, end = self._span(packet)
        if start is not None and start < 0:
            if end is None or end <= 0:  # wholly before the window
                if self.input.type == "audio":
                    self._preroll = packet
                return
            if self.input.type == "subtitle":  # shown from 0, for what is left of it
                packet.duration = round(end / packet.time_base)
                packet.pts = packet.dts = round(self.origin / packet.time_base)
        if self._preroll is not None:
            preroll, self._preroll = self._preroll, None
            self._mux(preroll, output)
        self._mux(packet, output)

    def _mux(self, packet, output) -> None:
        shift = round(self.origin / packet.time_base) if self.origin else 0
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self.output_stream
        output.mux(packet)


class _AudioToAac(_Copy):
    """Audio decoded and encoded again as AAC (192 kb/s), cut at the window's first and the
    video's last sample. A decoded frame is encoded once the video has passed its end (`reach`),
    so that the last one can be cut where the video ends (`flush`): memory stays a packet's."""

    def __init__(self, stream, origin, output, source: Path) -> None:
        super().__init__(stream, origin)
        self.output_stream = self._add_aac(output, source)
        _copy_tags(stream, self.output_stream)
        self._held: list[tuple[int, av.AudioFrame]] = []  # (its first sample in the output, frame)
        self._next: int | None = None  # the output's next sample, once the first is placed

    def _add_aac(self, output, source: Path):
        context = self.input.codec_context
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
            log.warning("%s: AAC cannot encode the layout %s; downmixing to stereo", source, layout)
            stream.layout = "stereo"
            stream.codec_context.open()
        return stream

    def write(self, packet, output) -> None:
        for frame in packet.decode():
            rate = frame.sample_rate
            start = float(frame.time) - self.origin if frame.time is not None else 0.0
            if start < 0:
                frame = _samples(frame, round(-start * rate), frame.samples)
                if frame is None:
                    continue
                start = 0.0
            if self._next is None:  # the first frame sets the start; then samples run on
                self._next = max(round(start * rate), 0)
            self._held.append((self._next, frame))
            self._next += frame.samples

    def reach(self, seconds, output) -> None:
        while self._held:
            first, frame = self._held[0]
            if (first + frame.samples) / frame.sample_rate > seconds:
                return  # it may go on past the video's end: wait
            self._held.pop(0)
            self._encode(first, frame, output)

    def flush(self, output, end) -> None:
        for first, frame in self._held:
            last = frame.samples if end is None else round(end * frame.sample_rate) - first
            cut = _samples(frame, 0, min(last, frame.samples))
            if cut is not None:
                self._encode(first, cut, output)
        self._held = []
        output.mux(self.output_stream.encode(None))

    def _encode(self, first: int, frame: av.AudioFrame, output) -> None:
        frame.pts = first
        frame.time_base = Fraction(1, frame.sample_rate)
        output.mux(self.output_stream.encode(frame))


def _samples(frame: av.AudioFrame, begin: int, end: int) -> av.AudioFrame | None:
    """Samples `begin:end` of `frame` (the frame itself when that is all of it); None if none."""
    begin, end = max(begin, 0), min(end, frame.samples)
    if begin == 0 and end == frame.samples:
        return frame
    if end <= begin:
        return None
    samples = frame.to_ndarray()  # planar: channels × samples; packed: 1 × (samples·channels)
    channels = 1 if frame.format.is_planar else len(frame.layout.channels)
    cut = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples[:, begin * channels : end * channels]),
        format=frame.format.name,
        layout=frame.layout.name,
    )
    cut.sample_rate = frame.sample_rate
    return cut


class _TextToMovText(_Copy):
    """Text subtitles (srt, ass, webvtt, ...) decoded and encoded again as mov_text."""

    def __init__(self, stream, origin, output) -> None:
        super().__init__(stream, origin)
        stream.codec_context.open(strict=False)  # the decoder makes the ASS header mov_text needs
        out = output.add_stream("mov_text")
        out.time_base = _MS
        out.codec_context.subtitle_header = stream.codec_context.subtitle_header
        _copy_tags(stream, out)
        self.output_stream = out
        self._last_ms: int | None = None

    def write(self, packet, output) -> None:
        start, end = self._span(packet)
        subtitles = self.input.codec_context.decode2(packet)
        if start is None or subtitles is None:
            return
        if end is None or end <= start:  # no packet duration: the subtitle's own
            end = start + (subtitles.end_display_time - subtitles.start_display_time) / 1000
        texts = [rect.dialogue for rect in subtitles.rects if rect.type == b"ass"]
        if end <= 0 or not texts:
            return
        begin_ms = max(round(start * 1000), 0)
        if self._last_ms is not None and begin_ms <= self._last_ms:
            begin_ms = self._last_ms + 1  # mp4 samples cannot share a time
        duration_ms = max(round(end * 1000) - begin_ms, 1)
        line = b"0,0,Default,,0,0,0,," + b"\\N".join(texts)
        encoded = self.output_stream.codec_context.encode_subtitle(
            SubtitleSet.create(line, 0, duration_ms)
        )
        encoded.pts = encoded.dts = begin_ms
        encoded.duration = duration_ms
        encoded.time_base = _MS
        encoded.stream = self.output_stream
        output.mux(encoded)
        self._last_ms = begin_ms


class _StreamCopy:
    """The streams of `source` other than its first video, copied into an output mp4 in step with
    the video, from `start` seconds after the source's first video frame (see the module)."""

    def __init__(self, source: Path, *, start: float = 0.0) -> None:
        self.source = source
        self.start = float(start)
        if not self.start >= 0:
            raise ValueError(f"the source's start must be ≥ 0 seconds, got {start}")
        self._copies: dict[int, _Copy] = {}
        self._until: float | None = None  # where the video has got to
        self._packets = None
        self._pending = None
        self._output = None
        if not source.exists():
            raise VideoError(f"{source}: no such file (asked to copy its audio)")
        if source.is_dir():
            log.info("%s is a frame folder: no audio to copy", source)
            self._input = None
            return
        self._input = _open_input(source)
        # Our video starts at 0; shift the others by the source video's start to keep them in sync.
        offset = 0.0
        videos = self._input.streams.video
        if videos and videos[0].start_time is not None:
            offset = float(videos[0].start_time * videos[0].time_base)
        self._origin = offset + self.start

    @property
    def active(self) -> bool:
        return self._input is not None

    def add_to(
        self, output: av.container.OutputContainer, video: av.stream.Stream | None = None
    ) -> None:
        """Add the copied streams and the metadata to `output` (before its header is written);
        `video` (the output's video stream) gets the source video's language and timecode."""
        if not self.active:
            return
        for key, value in self._input.metadata.items():
            if key.lower() not in _FILE_TAGS:
                output.metadata[key] = value
        source_video = self._input.streams.video[0] if self._input.streams.video else None
        if video is not None and source_video is not None:
            self._tag_video(source_video, video)
        for stream in self._input.streams:
            if stream is source_video:
                continue
            try:
                copy = self._copy_for(stream, output)
            except (av.error.FFmpegError, ValueError) as error:
                raise VideoError(
                    f"{self.source}: cannot copy its {_describe(stream)}: {error}"
                ) from error
            if copy is not None:
                self._copies[stream.index] = copy
        if not any(copy.input.type == "audio" for copy in self._copies.values()):
            log.info("%s has no audio stream: writing video only", self.source)
        self._output = output
        if self._copies:
            self._packets = self._input.demux(*(copy.input for copy in self._copies.values()))

    def _tag_video(self, source: av.stream.Stream, target: av.stream.Stream) -> None:
        _copy_tags(source, target)
        timecodes = [
            s.metadata["timecode"]
            for s in (source, *self._input.streams.data)
            if "timecode" in s.metadata
        ]
        if timecodes and self.start == 0:
            target.metadata["timecode"] = timecodes[0]
        elif timecodes:
            log.info(
                "%s: its timecode is not copied into a window starting at %.3f s",
                self.source,
                self.start,
            )

    def _copy_for(self, stream: av.stream.Stream, output) -> _Copy | None:
        """The copy of one stream, or None (with a log line saying why) when mp4 cannot carry it."""
        what, name = _describe(stream), _name(stream)
        supported = output.supported_codecs
        if stream.type == "audio":
            if name in _MP4_AUDIO_CODECS and name in supported:
                log.info("copying %s from %s", what, self.source)
                return _Remux(stream, self._origin, output)
            log.info("transcoding to AAC %s from %s", what, self.source)
            return _AudioToAac(stream, self._origin, output, self.source)
        if stream.type == "subtitle":
            if name == "mov_text":
                log.info("copying %s from %s", what, self.source)
                return _Remux(stream, self._origin, output)
            codec = stream.codec_context.codec if stream.codec_context is not None else None
            if codec is not None and codec.text_sub:
                log.info("converting to mov_text %s from %s", what, self.source)
                return _TextToMovText(stream, self._origin, output)
            log.info("skipping %s of %s: mp4 carries text subtitles only", what, self.source)
            return None
        if stream.type == "data":
            if stream.name in supported:
                log.info("copying %s from %s", what, self.source)
                return _Remux(stream, self._origin, output)
            if "timecode" in stream.metadata:
                return None  # it goes with the video's timecode tag
            log.info("skipping %s of %s: mp4 cannot carry it", what, self.source)
            return None
        if stream.type == "video":
            log.info(
                "skipping %s of %s: only the first video stream is coloured", what, self.source
            )
            return None
        log.info("skipping %s of %s: mp4 cannot carry it", what, self.source)
        return None

    def copy_until(self, seconds: float) -> None:
        """Mux every packet that starts before `seconds` of the output's timeline."""
        self._until = seconds
        if self._packets is None:
            return
        try:
            while True:
                if self._pending is None:
                    self._pending = next(self._packets, None)
                    if self._pending is None:
                        self._packets = None
                        break
                packet = self._pending
                copy = self._copies.get(packet.stream.index)
                if not packet.size or copy is None:  # the demuxer's end-of-stream marker
                    self._pending = None
                    continue
                start = copy.seconds(packet)
                if start is not None and start >= seconds:
                    break
                self._pending = None
                copy.write(packet, self._output)
            for copy in self._copies.values():
                copy.reach(seconds, self._output)
        except av.error.FFmpegError as error:
            log.warning(
                "%s: copying its audio and subtitles stopped at %.2f s (%s); the video continues "
                "without them",
                self.source,
                seconds,
                _ffmpeg_reason(error),
            )
            self._packets = None

    def flush(self) -> None:
        """Finish the transcoded streams (their last frames, cut where the video ended)."""
        for copy in self._copies.values():
            try:
                copy.flush(self._output, self._until)
            except av.error.FFmpegError as error:
                log.warning(
                    "%s: cannot finish its %s: %s",
                    self.source,
                    _describe(copy.input),
                    _ffmpeg_reason(error),
                )

    def close(self) -> None:
        if self._input is not None:
            self._input.close()
            self._input = None
