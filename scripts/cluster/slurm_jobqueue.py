"""A gtmsim sweep on a SLURM cluster through dask-jobqueue (pip install dask-jobqueue).

Run it on the login node (or in a small long-running job); it submits worker jobs with sbatch,
runs the sweep on them, writes the results and report.html under OUT, and cancels the jobs
at the end (the config and grid are checked before any job is submitted):

    python scripts/cluster/slurm_jobqueue.py configs/b2b_saas.toml grid.toml runs/slurm-sweep \
        --jobs 4 --cores 32 --queue compute --walltime 04:00:00

Each job is one node: `--cores` worker processes with one task thread and one numba thread
each (processes x threads = cores). The sweep resumes like the CLI: if the jobs hit their
walltime, run the same command again and finished points are skipped. To use the command
line instead, keep the cluster up (`--serve`) and run
`python -m gtmsim sweep ... --scheduler ADDRESS` with the address it prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from distributed import Client

from gtmsim.errors import GtmsimError
from gtmsim.report.sweep import sweep_report
from gtmsim.sweep import DEFAULT_CHUNK, load_grid, plan_sweep, prepare_out, run_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("grid")
    ap.add_argument("out")
    ap.add_argument("--replications", type=int, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    ap.add_argument("--engine", default="numba", choices=["numba", "simpy"])
    ap.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="replications per task")
    ap.add_argument("--jobs", type=int, default=2, help="SLURM jobs (nodes) to start")
    ap.add_argument("--cores", type=int, default=16, help="cores per job")
    ap.add_argument("--memory", default="32GB", help="memory per job")
    ap.add_argument("--queue", default=None, help="SLURM partition")
    ap.add_argument("--account", default=None)
    ap.add_argument("--walltime", default="02:00:00")
    ap.add_argument("--venv", default=None, help="a virtualenv to activate in the jobs")
    ap.add_argument("--serve", action="store_true",
                    help="only start the cluster and print its address; Ctrl-C stops it")
    args = ap.parse_args()
    try:  # after the arguments: --help needs no dask-jobqueue
        from dask_jobqueue import SLURMCluster
    except ImportError:
        print("slurm_jobqueue: error: dask-jobqueue is not installed: pip install dask-jobqueue",
              file=sys.stderr)
        sys.exit(2)

    plan = None
    if not args.serve:  # a bad config or grid is reported now, not after the queue's wait
        try:
            plan = plan_sweep(args.config, args.profile, args.overrides, load_grid(args.grid),
                              args.replications, args.seed, args.engine, args.chunk)
            prepare_out(Path(args.out), plan, create=False)
        except GtmsimError as exc:
            print(f"slurm_jobqueue: error: {exc}", file=sys.stderr)
            sys.exit(2)

    prologue = ["export NUMBA_NUM_THREADS=1"]
    if args.venv:
        prologue.insert(0, f"source {args.venv}/bin/activate")
    cluster = SLURMCluster(
        queue=args.queue, account=args.account, cores=args.cores, processes=args.cores,
        memory=args.memory, walltime=args.walltime, job_script_prologue=prologue,
        worker_extra_args=["--nthreads", "1"])
    cluster.scale(jobs=args.jobs)
    print(cluster.job_script())
    print(f"scheduler: {cluster.scheduler_address}", flush=True)
    try:
        with Client(cluster) as client:
            if args.serve:
                while True:
                    time.sleep(60)
            client.wait_for_workers(1, timeout=3600)  # the queue may take a while
            summary = run_sweep(plan, args.out, client,
                                lambda done, n: print(f"{done}/{n} replications", flush=True))
            print(summary)
            page = sweep_report(args.out)  # as the CLI writes it (atomically)
            report = Path(args.out) / "report.html"
            tmp = report.with_suffix(".html.tmp")
            tmp.write_text(page, encoding="utf-8")
            tmp.replace(report)
            print(f"report: {report}")
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
