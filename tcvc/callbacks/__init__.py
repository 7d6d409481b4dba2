"""Lightning callbacks: pictures of the validation clips, the training progress bar."""

from tcvc.callbacks.media import ValidationMedia, clip_strip, write_sample
from tcvc.callbacks.progress import StepProgressBar, format_metric

__all__ = ["StepProgressBar", "ValidationMedia", "clip_strip", "format_metric", "write_sample"]
