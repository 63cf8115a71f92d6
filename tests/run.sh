#!/bin/bash
# The test command (the README's, and what .ci/run runs in each job):
#   bash tests/run.sh [fast|slow|all|versions] [pytest arguments...]
#   fast  the fast tier, `pytest -m "not slow"`: every part checked directly (kernels against
#         their slow references, the stream input against a plan, checkpoint picking, config
#         validation, the report's selection, each feature's hooks) and one short end-to-end
#         run per path; within 3 minutes on 2 cores
#   slow  the slow tier, `pytest -m slow`: each end-to-end guarantee (resume after SIGKILL,
#         1 vs 4 devices, stream vs device, 1 vs 2 processes, fixed_order, notebooks, the
#         browser test, study smokes)
#   all   both, the fast tier first (the default)
#   versions  the fast tier, then the slow tests that rest on the installed releases
#         (`-m "slow and versions"`, tests/conftest.py VERSIONS): CI's Python 3.12 job, on the
#         newest releases (its 3.11 job runs `all`)
set -euo pipefail
cd "$(dirname "$0")/.."
# The test command installs what it needs: pip install -e '.[dev]' (README).
python -c 'import pytest, xdist, hypothesis, nbconvert, playwright' 2>/dev/null || {
  echo "error: the test tools are not installed; run pip install -e '.[dev]' from the repository root" >&2
  exit 2; }
# --dist loadgroup: the tests that share a fixture training a whole run go to one worker
# (tests/conftest.py, SHARED_RUNS), which then builds it once.
# One compilation cache for both tiers (tests/conftest.py makes one per session otherwise).
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$(mktemp -d -t regularity_jax_xla_XXXXXX)}"
tier="${1:-all}"
[ $# -gt 0 ] && shift
tier_() {  # tier_ NAME MARK-EXPRESSION PYTEST-ARGS...
  local name="$1" mark="$2" start=$SECONDS
  shift 2
  python -m pytest tests -q -n 2 --dist loadgroup -m "$mark" "$@"
  echo "$name tier: $((SECONDS - start)) s"
}
case "$tier" in
  fast) tier_ fast "not slow" "$@" ;;
  slow) tier_ slow slow "$@" ;;
  all) tier_ fast "not slow" "$@"; tier_ slow slow "$@" ;;
  versions) tier_ fast "not slow" "$@"; tier_ slow-versions "slow and versions" "$@" ;;
  *) echo "error: unknown tier '$tier'; use bash tests/run.sh [fast|slow|all|versions]" >&2; exit 2 ;;
esac
