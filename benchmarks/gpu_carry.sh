#!/bin/bash
# What a device call of benchmarks/gpu_evidence.sh carries, prepared here (with network), and its
# size measured against the device tool's 64 MiB (tree that travels + carried paths):
#   .whl/   the wheels the GPU image lacks, for Python 3.12 on x86-64 (git-ignored), and
#           .whl/COMMIT, the commit the tree is at (the device's copy has no .git)
#   .data/cifar10_jpeg_q75/   the CIFAR-10 JPEG q75 copy from ../shared/data (19 MB, git-ignored)
#
#   bash benchmarks/gpu_carry.sh            # from the repository root
#
# The image (/work/.library/device/KINDS.md) has jax 0.11.2, flax, optax, orbax-checkpoint,
# chex, numpy, scipy, pandas, matplotlib, pillow, tqdm, absl-py, etils, protobuf, psutil, PyYAML
# and torch. It lacks ml_collections (the config), grain (imported by the training inputs) and
# grain's imports array_record and portpicker. tensorflow-datasets and mnist1d are imported only
# when a run needs them (TFDS data, the mnist1d dataset); the evidence runs need neither.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS="ml_collections==1.1.0 grain==0.2.18 array_record==0.8.6 portpicker==1.6.0"
SHARED="${SHARED_DATA:-../shared/data}"
PY="${PYTHON:-python3}"

mkdir -p .whl
# Versions the CI's Python 3.12 job takes in (.ci/constraints-newest.txt); one of each.
for spec in $WHEELS; do
  name="${spec%%==*}"
  if ls .whl/ 2> /dev/null | grep -qiE "^${name//_/[-_]}-${spec##*==}-"; then continue; fi
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "$spec" 2>&1 | grep -v '^WARNING: Location' || true
  ls .whl/ | grep -qiE "^${name//_/[-_]}-" || { echo "error: no wheel of $spec downloaded"; exit 1; }
done
git rev-parse --short HEAD > .whl/COMMIT
git diff --quiet HEAD || sed -i 's/$/+uncommitted changes/' .whl/COMMIT

if [ ! -e .data/cifar10_jpeg_q75/cifar10-jpg.tar.gz ]; then
  [ -f "$SHARED/cifar10_jpeg_q75/cifar10-jpg.tar.gz" ] || {
    echo "error: no $SHARED/cifar10_jpeg_q75/cifar10-jpg.tar.gz; set SHARED_DATA to the folder"
    exit 1; }
  mkdir -p .data/cifar10_jpeg_q75
  cp "$SHARED/cifar10_jpeg_q75/"* .data/cifar10_jpeg_q75/
fi

# The device tool sends tracked and untracked-not-ignored files plus the carried paths.
tree=$(git ls-files -z -c -o --exclude-standard | xargs -0 stat -c %s 2> /dev/null \
  | awk '{s += $1} END {print s + 0}')
size() { du -sb "$1" 2> /dev/null | cut -f1; }
whl=$(size .whl); data=$(size .data/cifar10_jpeg_q75); results=$(size .gpu_evidence || echo 0)
total=$(( tree + whl + data + ${results:-0} ))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "carry: tree $(mib "$tree") + .whl $(mib "$whl") + .data/cifar10_jpeg_q75 $(mib "$data")" \
  "+ .gpu_evidence $(mib "${results:-0}") = $(mib "$total") of 64 MiB"
ls .whl
[ "$total" -lt $(( 64 * 1048576 )) ] || { echo "error: over 64 MiB; carry less"; exit 1; }
