"""Colourise a black-and-white video: `python colorize.py input=old.mp4 output=color.mp4 ckpt=W`.

Options: conf/colorize.yaml (interval, sampling=multi, resolution, scene cuts, device, ...).
"""

import hydra
from omegaconf import DictConfig

from tcvc.tasks.colorize import colorize
from tcvc.tasks.common import report_user_errors


@hydra.main(version_base="1.3", config_path="conf", config_name="colorize")
def main(cfg: DictConfig) -> None:
    report_user_errors(colorize)(cfg)


if __name__ == "__main__":
    main()
