#!/bin/bash
# GPU evidence in one device call: the benchmark suite at GPU sizes (all 7 cases) and a partial
# run of the Toneva CIFAR-10 protocol on the JPEG q75 copy. benchmarks/README.md, "GPU evidence",
# gives the device-tool call (and benchmarks/gpu_carry.sh prepares what it carries).
#
#   bash benchmarks/gpu_evidence.sh                        # from the repository root
#   GPU_EVIDENCE_SMOKE=1 bash benchmarks/gpu_evidence.sh   # CPU rehearsal: every part, tiny sizes
#
# Parts, in this order, each with its own time limit; a part starts only when its estimate
# fits in what is left of GPU_EVIDENCE_BUDGET_S (default 315 s from the script's start, so the
# whole call stays inside 5.5 minutes), else it is left for a rerun:
#   env           device, versions, commit (env.json)
#   suite_1_3_4   cases 1 (tracked vs bare step), 3 (GraNd), 4 (turn-over)
#   suite_7       case 7, the PyTorch baseline (settings printed beside each number)
#   toneva        experiments/configs/cifar10_resnet18.py on .data/cifar10_jpeg_q75 with
#                 max_wall_time_s=180 (compilation included), num_seeds 4 (2, then 1, if
#                 that runs out of memory), evaluated every epoch
#   suite_2       case 2 (full epochs, batch 128 and 512)
#   suite_5_6     cases 5 (MNIST epoch, stepped vs scanned) and 6 (vmapped seeds)
# Results go to GPU_EVIDENCE_DIR (default .gpu_evidence/): <part>.log, <part>.status and the
# part's files; a finished part leaves <part>.done. After each part everything is packed into
# $OUT/gpu_evidence.tar.gz (OUT unset: .gpu_evidence/out/), beside RESULTS.md (the suite table,
# ready for benchmarks/RESULTS.md), toneva_cifar10_summary.md and gpu_evidence.log.
# A rerun runs only the parts without a .done: on a fresh machine, unpack the archive into
# .gpu_evidence/ first and carry it. GPU_EVIDENCE_PARTS="suite_2 toneva" picks parts.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1

SMOKE="${GPU_EVIDENCE_SMOKE:-0}"
RESULTS="${GPU_EVIDENCE_DIR:-.gpu_evidence}"
DEST="${OUT:-$RESULTS/out}"
BUDGET="${GPU_EVIDENCE_BUDGET_S:-315}"
PY="${PYTHON:-python3}"
SITE="${GPU_EVIDENCE_SITE:-/tmp/gpu_evidence_site}"
RUNS="${GPU_EVIDENCE_RUNS:-/tmp/gpu_evidence_runs}"  # run directories: checkpoints stay here
PARTS="${GPU_EVIDENCE_PARTS:-env suite_1_3_4 suite_7 toneva suite_2 suite_5_6}"
START=$SECONDS
mkdir -p "$RESULTS" "$DEST" "$RUNS"
CALL=$(( $(cat "$RESULTS/calls" 2>/dev/null || echo 0) + 1 ))
echo "$CALL" > "$RESULTS/calls"

say() {  # one line on stdout and in the log
  echo "[gpu_evidence +$((SECONDS - START))s] $*" | tee -a "$RESULTS/gpu_evidence.log"
}

pack() {  # the archive and the loose copies, after every part (atomic: a cut call keeps the last)
  "$PY" -m benchmarks.gpu_evidence merge "$RESULTS" "$RESULTS/RESULTS.md" > /dev/null 2>&1 \
    || say "warning: merge failed; the parts' files are in the archive"
  tar czf "$DEST/gpu_evidence.tar.gz.tmp" --exclude=./out -C "$RESULTS" . \
    && mv "$DEST/gpu_evidence.tar.gz.tmp" "$DEST/gpu_evidence.tar.gz"
  cp "$RESULTS/gpu_evidence.log" "$DEST/gpu_evidence.log"
  [ -f "$RESULTS/RESULTS.md" ] && cp "$RESULTS/RESULTS.md" "$DEST/RESULTS.md"
  [ -f "$RESULTS/toneva_cifar10/summary.md" ] \
    && cp "$RESULTS/toneva_cifar10/summary.md" "$DEST/toneva_cifar10_summary.md"
  return 0
}

# Estimate and limit (seconds) of each part. The GPU estimates are guesses until the first call
# on a GPU prints the real times (benchmarks/README.md keeps them).
if [ "$SMOKE" = 1 ]; then
  PRESET=cpu_smoke; SUITE_FLAGS="--repeats=1"; TONEVA_WALL=90
  declare -A EST=([env]=20 [suite_1_3_4]=150 [suite_7]=15 [toneva]=150 [suite_2]=90 [suite_5_6]=150)
  declare -A LIMIT=([env]=60 [suite_1_3_4]=400 [suite_7]=60 [toneva]=300 [suite_2]=300 [suite_5_6]=400)
else
  PRESET=h100; SUITE_FLAGS=""; TONEVA_WALL=180
  declare -A EST=([env]=20 [suite_1_3_4]=150 [suite_7]=120 [toneva]=215 [suite_2]=90 [suite_5_6]=80)
  declare -A LIMIT=([env]=60 [suite_1_3_4]=210 [suite_7]=180 [toneva]=240 [suite_2]=150 [suite_5_6]=150)
fi

run_part() {  # run_part NAME COMMAND...: runs it under its limit unless done or out of budget
  local name="$1" left limit t0 rc
  shift
  if [ -f "$RESULTS/$name.done" ]; then say "$name: done in an earlier call, skipped"; return 0; fi
  left=$(( BUDGET - (SECONDS - START) ))
  if [ "${EST[$name]}" -gt "$left" ]; then
    say "$name: LEFT FOR A RERUN (estimate ${EST[$name]} s, $left s left of $BUDGET s)"
    return 0
  fi
  limit=$(( ${LIMIT[$name]} < left - 12 ? ${LIMIT[$name]} : left - 12 ))
  say "$name: start (limit $limit s)"
  t0=$SECONDS
  # The suite's rows, the torch settings and one-line errors reach stdout as they come; the
  # whole output is in <part>.log.
  timeout -k 10 "$limit" "$@" > >(tee "$RESULTS/$name.log" | grep --line-buffered -E \
    '^(case=|7 torch settings|env: |toneva|error|warning: stopped|wrote )') 2>&1
  rc=$?
  sleep 0.2  # let the output filter finish its last line
  printf '{"rc": %d, "seconds": %d, "limit": %d, "call": %d}\n' "$rc" $((SECONDS - t0)) \
    "$limit" "$CALL" > "$RESULTS/$name.status"
  if [ "$rc" = 0 ]; then
    touch "$RESULTS/$name.done"
    say "$name: done in $((SECONDS - t0)) s"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    say "$name: TIMED OUT after $((SECONDS - t0)) s (limit $limit s); tail of $name.log:"
    tail -n 5 "$RESULTS/$name.log" | cut -c1-300
  else
    say "$name: FAILED (exit $rc) after $((SECONDS - t0)) s; tail of $name.log:"
    tail -n 5 "$RESULTS/$name.log" | cut -c1-300
  fi
  pack
  return 0
}

suite() {  # suite NAME CASES
  run_part "$1" "$PY" -m benchmarks.suite --preset="$PRESET" --cases="$2" $SUITE_FLAGS \
    --out="$RESULTS/$1.md"
}

toneva() {  # the protocol run, with the largest num_seeds (4, 2, 1) that fits in memory
  local seeds config="experiments/configs/cifar10_resnet18.py" extra=()
  local data="${GPU_EVIDENCE_CIFAR:-.data/cifar10_jpeg_q75}"
  [ -e "$data" ] || { echo "error: no CIFAR-10 JPEG q75 at $data; run benchmarks/gpu_carry.sh" \
    "first (it copies ../shared/data/cifar10_jpeg_q75 there)"; return 2; }
  if [ "$SMOKE" = 1 ]; then
    config="$config:smoke"; extra=(--config.num_epochs=50)
  fi
  for seeds in ${GPU_EVIDENCE_SEEDS:-4 2 1}; do
    [ "$SMOKE" = 1 ] && [ "$seeds" -gt 2 ] && continue  # 2 seeds are enough on a CPU
    local run="$RUNS/cifar10_resnet18_seeds$seeds"
    echo "toneva: num_seeds=$seeds, max_wall_time_s=$TONEVA_WALL, workdir $run"
    "$PY" -m experiments.main --config="$config" --config.data_dir="$data" \
      --config.num_seeds="$seeds" --config.max_wall_time_s="$TONEVA_WALL" \
      --config.eval_every=1 --config.checkpoint_every=1000 --config.plots=False \
      --config.report=False --config.progress_bar=False "${extra[@]}" --workdir="$run" \
      2> >(tee "$RESULTS/toneva_seeds$seeds.stderr" >&2)
    local rc=$?
    if [ "$rc" = 0 ]; then
      "$PY" -m benchmarks.gpu_evidence toneva "$RESULTS" "$run" | sed -n '/^| epoch/,$p' \
        | sed 's/^/toneva: /'
      return 0
    fi
    grep -qiE 'RESOURCE_EXHAUSTED|out of memory' "$RESULTS/toneva_seeds$seeds.stderr" || return "$rc"
    echo "error: num_seeds=$seeds ran out of device memory; trying fewer"
  done
  return 1
}
export -f toneva
export SMOKE PY RESULTS RUNS TONEVA_WALL GPU_EVIDENCE_SMOKE="$SMOKE"

say "call $CALL: smoke=$SMOKE budget=$BUDGET s results=$RESULTS out=$DEST parts: $PARTS"
# The wheels the image lacks (benchmarks/gpu_carry.sh), then the project itself, both --no-deps.
if ls .whl/*.whl > /dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" .whl/*.whl 2>&1 | grep -v '^WARNING: Target directory' \
    || true
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
    --no-cache-dir --upgrade --target "$SITE/project" . > "$RESULTS/install.log" 2>&1; then
  say "warning: pip install --no-deps of the project failed (install.log); running from the tree"
fi
"$PY" -c "import regularity_jax.training, ml_collections, grain" 2> "$RESULTS/import.log" || {
  say "error: the project does not import: $(tail -n 1 "$RESULTS/import.log"); carry the" \
    "wheels benchmarks/gpu_carry.sh downloads (.whl) and rerun"
  pack; exit 2; }
say "installed ($((SECONDS - START)) s)"

for part in $PARTS; do
  case "$part" in
    env) run_part env "$PY" -m benchmarks.gpu_evidence env "$RESULTS" ;;
    suite_1_3_4) suite suite_1_3_4 1,3,4 ;;
    suite_7) suite suite_7 7 ;;
    suite_2) suite suite_2 2 ;;
    suite_5_6) suite suite_5_6 5,6 ;;
    toneva) run_part toneva bash -c toneva ;;
    *) say "error: unknown part '$part'; parts: env suite_1_3_4 suite_7 toneva suite_2 suite_5_6"
       exit 2 ;;
  esac
done
pack
left=$(for p in $PARTS; do [ -f "$RESULTS/$p.done" ] || printf '%s ' "$p"; done)
say "call $CALL ends after $((SECONDS - START)) s; ${left:+not done yet (rerun): $left}${left:-every part done}"
say "results: $DEST/gpu_evidence.tar.gz, $DEST/RESULTS.md, $DEST/toneva_cifar10_summary.md"
