"""Colourise a black-and-white video: `python colorize.py input=old.mp4 output=color.mp4 ckpt=W`.

Options: conf/colorize.yaml and conf/inference/ (interval, sampling=multi, resolution, scene
cuts, device, ...).
"""

from tcvc.tasks.colorize import colorize
from tcvc.tasks.config import run_task

if __name__ == "__main__":
    run_task("colorize", colorize)
