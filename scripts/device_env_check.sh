#!/usr/bin/env bash
# Run the tests here, on the CPU, with the GPU machine's versions of what it already has, and
# without what it lacks, before a lent GPU's few minutes are spent finding out there.
#
# The GPU machine (scripts/gpu_check.py; the device tool's KINDS.md) has torch 2.11.0,
# torchvision 0.26.0, pytorch-lightning 2.6.6 and torchmetrics 1.9.0, and none of wandb,
# torch-fidelity, optuna, hydra-optuna-sweeper, submitit or hydra-submitit-launcher (the rest
# travels as wheels: scripts/gpu_wheels.sh). This script makes a virtual environment like that
# (VENV, default /tmp/tcvc-device-env; the first time it downloads about 5 GB from the package
# registry), with this project's .venv's versions of everything else, and runs in it:
#   1. the tests that make test runs, with ops/ built against that torch's headers (the
#      packages the GPU machine lacks still installed: some tests need them);
# then uninstalls those packages, as the GPU machine is, and runs
#   2. pytest -m gpu --collect-only: what gpu_check.py's pytest step collects there;
#   3. the gpu tests' CPU bodies and gpu_check.py --dry-run (tests/test_gpu_paths.py,
#      tests/test_gpu_check.py, slow ones included).
# Python stays this machine's 3.11 (the GPU machine's is 3.12); nothing of it is for CI.
#
#     scripts/device_env_check.sh          # exit 0 when all three pass
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-/tmp/tcvc-device-env}
ABSENT=(wandb torch-fidelity optuna hydra-optuna-sweeper submitit hydra-submitit-launcher)
THERE=(torch==2.11.0 torchvision==0.26.0 pytorch-lightning==2.6.6 torchmetrics==1.9.0)

test -x .venv/bin/python || { echo "error: run make test first (it sets up .venv)" >&2; exit 1; }
if [[ ! -x $VENV/bin/python ]]; then
  python3 -m venv "$VENV"
fi
pip=("$VENV/bin/pip" install -q --disable-pip-version-check)
constraints=$(mktemp)
printf '%s\n' "${THERE[@]}" > "$constraints"
# everything else at .venv's versions
.venv/bin/pip freeze --exclude-editable --disable-pip-version-check \
  | grep -v -i -E '^(torch|torchvision|torchmetrics|pytorch-lightning|triton|nvidia-.*|cuda-.*|tcvc)==' \
  > "$constraints.req"
"${pip[@]}" "${THERE[@]}" -c "$constraints"
"${pip[@]}" --no-deps -r "$constraints.req"
rm -f "$constraints" "$constraints.req"
"$VENV/bin/python" -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, 'lightning', pl.__version__)"

export PYTHONPATH=$ROOT TORCH_EXTENSIONS_DIR=$VENV/torch_extensions
py=("$VENV/bin/python" -m pytest -q -p no:cacheprovider)
status=0
echo "== 1. make test's tests"
"${py[@]}" -m "not slow" tests || status=1
echo "== without ${ABSENT[*]}, as on the GPU machine"
"$VENV/bin/pip" uninstall -y -q "${ABSENT[@]}"
echo "== 2. what gpu_check.py's pytest step collects"
"${py[@]}" -m gpu --collect-only tests | tail -1 || status=1
echo "== 3. the gpu tests' CPU bodies and the dry run"
"${py[@]}" -m "not gpu" tests/test_gpu_paths.py tests/test_gpu_check.py || status=1
exit $status
