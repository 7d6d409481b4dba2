#!/usr/bin/env bash
# Fill .whl/ with what scripts/gpu_check.py needs on the lent GPU machine and that machine lacks.
#
# The GPU machine (see scripts/gpu_check.py) has Python 3.12, torch, pytorch-lightning,
# torchmetrics, torchvision, numpy, scipy, pillow, pyyaml, packaging, tqdm, setuptools and
# wheel, but no network and none of: hydra-core, omegaconf (and its antlr4 runtime), kornia (and
# kornia_rs), PyAV, lpips, scikit-video. This script downloads those here as cp312 manylinux
# x86_64 wheels with --no-deps (the device README's recipe), at the versions this project's
# .venv runs (so the check runs what the tests ran), plus the sdist of spatial-correlation-sampler
# (the peer correlation the ops step builds there). wandb is left out: nothing the check runs
# imports it (logger=csv; tcvc imports wandb only inside W&B code paths).
#
# It checks that every wheel's Requires-Dist (extras aside) is another wheel here or a package
# the GPU machine has, keeps one version of each package, and prints the total size: the whole
# tree that travels to the device machine must stay under 64 MiB.
#
#     scripts/gpu_wheels.sh            # needs pip access to PyPI; PYTHON=... picks the pip
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
DEST=.whl
# distribution names (as pip and importlib.metadata spell them)
PACKAGES=(hydra-core omegaconf antlr4-python3-runtime kornia kornia_rs av lpips scikit-video)
# what the GPU machine already has (its image's package list), lower-case, '-' for '_'
PRESENT=" torch torchvision numpy scipy pillow pyyaml packaging tqdm setuptools wheel
  typing-extensions importlib-resources "
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
SCS=spatial-correlation-sampler==0.5.0

normalized() { echo "$1" | tr 'A-Z-' 'a-z_'; }

version_of() {
  "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null \
    || { echo "error: $1 is not installed in $PY's environment (make test sets up .venv)" >&2; exit 1; }
}

mkdir -p "$DEST"
specs=()
for name in "${PACKAGES[@]}"; do
  version=$(version_of "$name")
  specs+=("$name==$version")
  # one version of each package: an older wheel beside the new one stops the whole install
  for old in "$DEST"/"$(normalized "$name")"-*.whl; do
    if [[ -e $old && $old != "$DEST/$(normalized "$name")-$version-"* ]]; then rm -v "$old"; fi
  done
done
echo "wheels: ${specs[*]}"

binary=() source=()
for spec in "${specs[@]}"; do
  case $spec in
    antlr4-python3-runtime==*) source+=("$spec") ;;  # PyPI has its 4.9 line as an sdist only
    *) binary+=("$spec") ;;
  esac
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d "$DEST" "${binary[@]}"
for spec in "${source[@]}"; do
  # pure Python: the wheel built here is py3-none-any, good for 3.12 there
  "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$DEST" "$spec"
done
# the sdist; gpu_check.py patches and builds it on the GPU machine (no wheel fits current torch)
"$PY" -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d "$DEST" "$SCS"

echo
missing=0
# every need of every wheel, markers evaluated for CPython 3.12 on Linux x86-64
"$PY" - "$DEST" "$PRESENT" <<'CHECK' || missing=1
import sys, zipfile
from pathlib import Path
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

dest, present = Path(sys.argv[1]), {canonicalize_name(n) for n in sys.argv[2].split()}
wheels = sorted(dest.glob("*.whl"))
names = [canonicalize_name(w.name.split("-")[0]) for w in wheels]
target = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
          "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
          "implementation_name": "cpython", "platform_python_implementation": "CPython",
          "extra": ""}
print("Requires-Dist of each wheel on CPython 3.12 (extras left out):")
bad = [n for n in set(names) if names.count(n) > 1]
for wheel in wheels:
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(meta).decode().splitlines()
    needs = []
    for line in lines:
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.marker is None or req.marker.evaluate(target):
                needs.append(canonicalize_name(req.name))
    print(f"  {wheel.name:<75} {' '.join(sorted(needs)) or '(none)'}")
    for need in needs:
        if need not in names and need not in present:
            print(f"    error: {need} is neither a wheel in {dest} nor on the GPU machine")
            bad.append(need)
if bad:
    sys.exit(f"error: missing or duplicated: {' '.join(sorted(set(bad)))}")
CHECK
echo
du -ch "$DEST"/* | sort -h
echo "total of $DEST: $(du -sh "$DEST" | cut -f1) (all that travels, tree included, must be ≤ 64 MiB)"
exit $missing
