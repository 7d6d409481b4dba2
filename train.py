"""Train TCVC: `python train.py experiment=idc_srl_sample` (see conf/train.yaml)."""

from tcvc.tasks.config import run_task
from tcvc.tasks.train import train

if __name__ == "__main__":
    run_task("train", train)
