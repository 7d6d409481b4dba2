"""Train TCVC: `python train.py experiment=idc_srl_sample` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from tcvc.tasks.common import report_user_errors
from tcvc.tasks.train import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = report_user_errors(train)(cfg)
    # the value an hparams_search sweeper optimises (conf/hparams_search/*.yaml)
    objective = cfg.get("optimized_metric")
    return metrics.get(objective) if objective else None


if __name__ == "__main__":
    main()
