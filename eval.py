"""Evaluate TCVC with the paper's protocol: `python eval.py ckpt=80000_G.pth data=davis30`
(see conf/eval.yaml)."""

import hydra
from omegaconf import DictConfig

from tcvc.tasks.common import report_user_errors
from tcvc.tasks.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    report_user_errors(evaluate)(cfg)


if __name__ == "__main__":
    main()
