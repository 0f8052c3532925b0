#!/usr/bin/env bash
# Start a Dask scheduler and workers by hand, then point `gtmsim sweep --scheduler` at it.
#
#   scripts/cluster/start_by_hand.sh scheduler            # on the head node (port 8786)
#   scripts/cluster/start_by_hand.sh worker HEAD [N]      # on every compute node
#   python -m gtmsim sweep --grid grid.toml --scheduler tcp://HEAD:8786 --out runs/my-sweep
#
# Every machine needs the same Python environment (gtmsim and dask installed, same versions);
# the numba cache need not be shared: each worker compiles or loads the kernels once when it
# connects. Workers run one task thread each; NUMBA_NUM_THREADS is set so that workers x numba
# threads equals the cores of the node (no oversubscription).
# Stop with Ctrl-C (or kill the dask process).
set -euo pipefail

role=${1:-}
case "$role" in
  scheduler)
    port=${PORT:-8786}
    exec dask scheduler --host 0.0.0.0 --port "$port" --dashboard-address :8787
    ;;
  worker)
    head=${2:?give the scheduler host, e.g. $0 worker node01}
    cores=$(nproc)
    n=${3:-$cores}                       # worker processes on this node
    if ! [[ $n =~ ^[0-9]+$ ]] || (( 10#$n < 1 )); then
      echo "$0: error: N (worker processes) must be a whole number >= 1, got '$n'" >&2
      exit 2
    fi
    n=$(( 10#$n ))
    threads=$(( cores / n )); (( threads >= 1 )) || threads=1
    export NUMBA_NUM_THREADS=$threads   # numba threads inside each worker
    # named by host and this start's process id: a second start on one node (more workers,
    # or a restart while the scheduler still holds the old ones) was refused 'name taken'
    exec dask worker "tcp://$head:${PORT:-8786}" --nworkers "$n" --nthreads 1 \
      --memory-limit auto --name "$(hostname)-$$"
    ;;
  *)
    awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"   # the comment at the top
    exit 2
    ;;
esac
