"""Evaluation: the paper's test protocol and its report.

- ``methods``: the compared methods as config objects (``TCVC``, ``IDCFrames``, ``GrayInput``,
  ``GroundTruth``);
- ``protocol``: colour a test video by every run and score it (``colorize_and_score``), means;
- ``scoring``: the metrics of one video's outputs (``score_video``), the warp error's flows;
- ``report``: metrics.json / csv, table.md, plots, comparison videos, frames, W&B.

``tcvc.tasks.evaluate.evaluate(cfg)`` puts them together for eval.py.
"""

from tcvc.evaluation.methods import TestVideo, Weights, idc_ab
from tcvc.evaluation.protocol import Entry, colorize_and_score, mean_scores
from tcvc.evaluation.scoring import GROUND_TRUTH, METRICS, flow_at_resolution, score_video

# the methods' classes are named by their configs' _target_ (tcvc.evaluation.methods.TCVC, ...)
__all__ = [
    "GROUND_TRUTH",
    "METRICS",
    "Entry",
    "TestVideo",
    "Weights",
    "colorize_and_score",
    "flow_at_resolution",
    "idc_ab",
    "mean_scores",
    "score_video",
]
