"""Evaluate TCVC with the paper's protocol: `python eval.py ckpt=80000_G.pth data=davis30`
(see conf/eval.yaml)."""

from tcvc.tasks.config import run_task
from tcvc.tasks.evaluate import evaluate

if __name__ == "__main__":
    run_task("eval", evaluate)
