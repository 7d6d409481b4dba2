"""Lightning callbacks."""

from tcvc.callbacks.media import ValidationMedia, clip_strip

__all__ = ["ValidationMedia", "clip_strip"]
