"""Kept for old imports: the audio copy grew into `tcvc.io.streams` (audio, subtitles, data,
metadata), whose `_StreamCopy` is the `_AudioCopy` of before."""

from tcvc.io.streams import _MP4_AUDIO_CODECS, _StreamCopy

_AudioCopy = _StreamCopy

__all__ = ["_MP4_AUDIO_CODECS", "_AudioCopy"]
