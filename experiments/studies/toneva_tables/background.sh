#!/usr/bin/env bash
# The ten runs of the toneva_tables study, one at a time, in the background, from pinned code.
#
#   background.sh start COMMIT   pin COMMIT (once) and run every unfinished run, resuming
#   background.sh pause          kill -STOP its process group (timings of other work)
#   background.sh resume         kill -CONT
#   background.sh status         pid, state, the log's tail
#   background.sh carry          copy the run in progress, as of its newest whole checkpoint
#                                (about 3.3 MB), to $RESULTS/partial/<name>/ for a commit
#
# A session's machine may not outlive it (on 2026-12-08 a session started on a new machine
# without $WORK, and an unfinished seed started again from epoch 1). Before a session ends, run
# `carry` and commit $RESULTS/partial; `start` restores a run from there when $WORK lacks it,
# and resumes it from that checkpoint as from any other (SIGKILL's path: metrics.jsonl lines
# after the checkpoint are the engine's to repair).
#
# Run `start` from the main checkout at the beginning of each session (background processes end
# with the session; a killed run resumes bit-identically from its checkpoints). It creates once
# the pinned worktree $PINNED (git worktree, detached at COMMIT) and its own venv
# $PINNED/.venv (a venv of $VENV_SRC's interpreter that sees $VENV_SRC's packages; the pinned
# code comes first on PYTHONPATH, checked), then, under nohup and nice -n 19, for each run
# <dataset>_seed<k>: skips it if $RESULTS/runs/<name>/forgetting.npz exists; refuses to go on
# if the run was started by another commit ($WORK/runs/<name>/commit.txt); trains or resumes
# it (the study with --config.only=<name>; full run in $WORK/training/runs/<name>); copies its
# small results to $RESULTS/runs/<name>/ and rewrites $RESULTS/report.md from every result
# there (--config.train=False). It never commits. Settings (environment):
#   PINNED   /work/toneva_pinned      WORK     /work/toneva_work (pid file and log too)
#   RESULTS  <this checkout>/experiments/results/toneva_tables
#   VENV_SRC /work/venv311            MNIST    /work/shared/data/mnist
#   CONFIG_ARG  ''  (':smoke' for the smoke runs, to test this script end to end)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$HERE" rev-parse --show-toplevel)"
PINNED="${PINNED:-/work/toneva_pinned}"
WORK="${WORK:-/work/toneva_work}"
RESULTS="${RESULTS:-$REPO/experiments/results/toneva_tables}"
VENV_SRC="${VENV_SRC:-/work/venv311}"
MNIST="${MNIST:-/work/shared/data/mnist}"
CONFIG_ARG="${CONFIG_ARG:-}"
PIDFILE="$WORK/background.pid"
LOG="$WORK/background.log"

log() { echo "[$(date -u '+%Y-%m-%d %H:%M:%S')] $*" >> "$LOG"; }

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  local state; state="$(ps -o stat= -p "$pid" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != Z* ]] && echo "$pid"  # an exited loop may linger as a zombie
}

pin() {  # COMMIT: the pinned worktree and its venv, created once, checked every time
  local commit; commit="$(git -C "$REPO" rev-parse --verify "$1^{commit}")"
  if [[ ! -d "$PINNED" ]]; then
    git -C "$REPO" worktree add --detach "$PINNED" "$commit" >/dev/null
  fi
  local head; head="$(git -C "$PINNED" rev-parse HEAD)"
  if [[ "$head" != "$commit" ]]; then
    echo "error: $PINNED is at $head, not $commit; start with the commit that started the" \
         "series (cat $PINNED/COMMIT), or remove that worktree for a new series" >&2
    exit 1
  fi
  echo "$commit" > "$PINNED/COMMIT"
  if [[ ! -x "$PINNED/.venv/bin/python" ]]; then
    "$VENV_SRC/bin/python" -m venv "$PINNED/.venv"
    local src dst
    src="$("$VENV_SRC/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    dst="$("$PINNED/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    echo "$src" > "$dst/toneva_packages.pth"
  fi
  local found
  found="$(cd "$PINNED" && PYTHONPATH="$PINNED" "$PINNED/.venv/bin/python" -c \
    'import regularity_jax; print(regularity_jax.__file__)')"
  if [[ "$found" != "$PINNED/"* ]]; then
    echo "error: the pinned venv imports regularity_jax from $found, not $PINNED" >&2
    exit 1
  fi
}

study() {  # the study command of the pinned code, niced
  (cd "$PINNED" && PYTHONPATH="$PINNED" nice -n 19 "$PINNED/.venv/bin/python" -m experiments.study \
     --config="$PINNED/experiments/studies/toneva_tables/config.py$CONFIG_ARG" \
     --config.mnist_dir="$MNIST" "$@")
}

newest_checkpoint() {  # RUN_DIR: the newest step whose save finished and whose digest exists
  local step
  for step in $(ls "$1/checkpoints" 2>/dev/null | grep -E '^[0-9]+$' | sort -rn); do
    if [[ -f "$1/checkpoints/$step/commit_success.txt" && -f "$1/checkpoints/digest-$step.json" ]]; then
      echo "$step"; return 0
    fi
  done
  return 1
}

carry() {  # the run in progress -> $RESULTS/partial/<name>/ (run dir files, checkpoint, commit)
  local name="" small run step out
  for small in "$WORK"/runs/*/; do
    small="${small%/}"
    [[ -f "$small/commit.txt" && ! -f "$small/forgetting.npz" ]] && name="$(basename "$small")"
  done
  [[ -n "$name" ]] || { echo "no run in progress under $WORK/runs" >&2; exit 1; }
  run="$WORK/training/runs/$name"
  local pid=""; pid="$(running_pid)" && kill -STOP -- "-$pid"  # a consistent copy
  step="$(newest_checkpoint "$run")" || {
    [[ -n "$pid" ]] && kill -CONT -- "-$pid"; echo "$name has no whole checkpoint yet" >&2; exit 1; }
  out="$RESULTS/partial/$name"
  rm -rf "$out.tmp" && mkdir -p "$out.tmp/run/checkpoints"
  cp "$WORK/runs/$name/commit.txt" "$out.tmp/commit.txt"
  for f in config.json metrics.jsonl wall_time.json; do
    [[ -f "$run/$f" ]] && cp "$run/$f" "$out.tmp/run/$f"
  done
  cp -r "$run/checkpoints/$step" "$run/checkpoints/digest-$step.json" "$out.tmp/run/checkpoints/"
  [[ -n "$pid" ]] && kill -CONT -- "-$pid"
  rm -rf "$out" && mv "$out.tmp" "$out"
  log "carried $name at checkpoint $step to $out (commit it)"
  echo "carried $name at checkpoint $step to $out ($(du -sh "$out" | cut -f1)); commit it"
}

restore() {  # NAME: a carried run, when $WORK lacks it
  local from="$RESULTS/partial/$1" run="$WORK/training/runs/$1"
  [[ -d "$from" && ! -d "$run" ]] || return 0
  mkdir -p "$WORK/runs/$1" "$(dirname "$run")"
  cp "$from/commit.txt" "$WORK/runs/$1/commit.txt"
  cp -r "$from/run" "$run"
  log "restored $1 from $from (checkpoint $(newest_checkpoint "$run"))"
}

loop() {
  local commit names name small
  commit="$(cat "$PINNED/COMMIT")"
  names="$(cd "$PINNED" && PYTHONPATH="$PINNED" "$PINNED/.venv/bin/python" -c "
from experiments.studies.toneva_tables import config, study
print(' '.join(n for n, *_ in study.grid(config.get_config('${CONFIG_ARG#:}'))))")"
  log "start: commit $commit, runs: $names"
  for name in $names; do
    if [[ -f "$RESULTS/runs/$name/forgetting.npz" ]]; then
      log "skip $name (results present)"
      continue
    fi
    small="$WORK/runs/$name"
    restore "$name"
    mkdir -p "$small"
    if [[ -f "$small/commit.txt" && "$(cat "$small/commit.txt")" != "$commit" ]]; then
      log "refuse $name: started by commit $(cat "$small/commit.txt"), the pinned code is" \
          "$commit; never resume a run with other code (finish it with its commit, or move" \
          "$small and $WORK/training/runs/$name away to start it again)"
      exit 1
    fi
    echo "$commit" > "$small/commit.txt"
    log "train $name"
    study --config.only="$name" --workdir="$WORK" >> "$LOG" 2>&1 || {
      log "failed $name (exit $?); rerun start to resume it"; exit 1; }
    mkdir -p "$RESULTS/runs/$name"
    for f in metrics.jsonl config.json timing.json commit.txt; do
      cp "$small/$f" "$RESULTS/runs/$name/$f"
    done
    cp "$small/forgetting.npz" "$RESULTS/runs/$name/forgetting.npz.tmp"
    mv "$RESULTS/runs/$name/forgetting.npz.tmp" "$RESULTS/runs/$name/forgetting.npz"
    log "finished $name; results in $RESULTS/runs/$name"
    study --config.train=False --workdir="$RESULTS" >> "$LOG" 2>&1 || log "report failed"
    log "report rewritten: $RESULTS/report.md (not committed)"
    [[ -d "$RESULTS/partial/$name" ]] && rm -r "$RESULTS/partial/$name" \
      && log "removed $RESULTS/partial/$name (the run finished; commit its removal)"
  done
  log "done: every run has results"
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start)
    [[ -n "${2:-}" ]] || { echo "usage: $0 start COMMIT" >&2; exit 2; }
    mkdir -p "$WORK" "$RESULTS/runs"
    if pid="$(running_pid)"; then
      echo "already running: pid $pid (log $LOG)"; exit 0
    fi
    pin "$2"
    PINNED="$PINNED" WORK="$WORK" RESULTS="$RESULTS" VENV_SRC="$VENV_SRC" MNIST="$MNIST" \
      CONFIG_ARG="$CONFIG_ARG" nohup setsid bash "$HERE/background.sh" _loop >> "$LOG" 2>&1 &
    echo $! > "$PIDFILE"
    echo "started: pid $! (process group), log $LOG, pinned $PINNED at $(cat "$PINNED/COMMIT")"
    ;;
  _loop) loop ;;
  carry) carry ;;
  pause|resume)
    pid="$(running_pid)" || { echo "not running" >&2; exit 1; }
    kill "-$([[ $1 == pause ]] && echo STOP || echo CONT)" -- "-$pid"
    log "$1d by ${USER:-$(id -un)}"
    echo "$1d: process group $pid"
    ;;
  status)
    if pid="$(running_pid)"; then
      echo "running: pid $pid, state $(ps -o stat= -p "$pid")"
    else
      echo "not running"
    fi
    [[ -f "$LOG" ]] && grep '^\[' "$LOG" | tail -n 5
    ;;
  *) echo "usage: $0 start COMMIT | pause | resume | status | carry" >&2; exit 2 ;;
esac
