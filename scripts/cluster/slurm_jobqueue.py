"""A gtmsim sweep on a SLURM cluster through dask-jobqueue (pip install dask-jobqueue).

Run it on the login node (or in a small long-running job); it submits worker jobs with sbatch,
runs the sweep on them, writes the results and report.html under OUT, and cancels the jobs
at the end (the config and grid are checked before any job is submitted, and a finished sweep
run again only rewrites its report):

    python scripts/cluster/slurm_jobqueue.py configs/b2b_saas.toml grid.toml runs/slurm-sweep \
        --jobs 4 --cores 32 --queue compute --walltime 04:00:00

Each job is one node: `--cores` worker processes with one task thread and one numba thread
each (processes x threads = cores). The sweep resumes like the CLI: if the jobs hit their
walltime, run the same command again and finished points are skipped. To use the command
line instead, keep the cluster up (`--serve`) and run
`python -m gtmsim sweep ... --scheduler ADDRESS` with the address it prints (`--serve` needs
no CONFIG, GRID or OUT).
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import sys
import time
from pathlib import Path

from distributed import Client

# the command line's own checks: an error names the flag (--seed: ...), as gtmsim's does
from gtmsim.cli import positive_count, replication_count, root_seed, staged
from gtmsim.errors import ClusterLost, EngineFailed, GtmsimError, TaskFailed
from gtmsim.report.export import counted
from gtmsim.report.sweep import sweep_report
from gtmsim.sweep import DEFAULT_CHUNK, load_grid, plan_sweep, prepare_out, run_sweep

QUEUE_WAIT = 3600  # seconds the sweep waits for its first worker job to leave the queue


class _Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so the cluster is closed on the way out."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


def _fail(message: str, code: int = 2) -> None:
    """One line on stderr and exit `code` (2: bad input, 1: the run stopped)."""
    print(f"slurm_jobqueue: error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


class _Parser(argparse.ArgumentParser):
    """An argument error is one line, as gtmsim's own (not the usage, then the error)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        _fail(re.sub(r"^argument ([^:]+): ", r"\1: ", message))


def _memory(text: str) -> str:
    """A memory size dask reads (32GB, 64GiB): dask-jobqueue's own error was a traceback."""
    from dask.utils import parse_bytes

    try:
        parse_bytes(text)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    return text


def main() -> None:
    ap = _Parser(description=__doc__.splitlines()[0])
    # optional only under --serve, which starts the cluster and runs no sweep
    ap.add_argument("config", nargs="?")
    ap.add_argument("grid", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--replications", type=replication_count, default=None)
    ap.add_argument("--seed", type=root_seed, default=None)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    ap.add_argument("--engine", default="numba", choices=["numba", "simpy"])
    ap.add_argument("--chunk", type=positive_count, default=DEFAULT_CHUNK,
                    help="replications per task")
    # 0 jobs waited an hour for a worker
    ap.add_argument("--jobs", type=positive_count, default=2, help="SLURM jobs (nodes) to start")
    ap.add_argument("--cores", type=positive_count, default=16, help="cores per job")
    ap.add_argument("--memory", type=_memory, default="32GB", help="memory per job")
    ap.add_argument("--queue", default=None, help="SLURM partition")
    ap.add_argument("--account", default=None)
    ap.add_argument("--walltime", default="02:00:00")
    ap.add_argument("--venv", default=None, help="a virtualenv to activate in the jobs")
    ap.add_argument("--serve", action="store_true",
                    help="only start the cluster and print its address; Ctrl-C stops it")
    args = ap.parse_args()
    missing = [k for k in ("config", "grid", "out") if getattr(args, k) is None]
    if missing and not args.serve:
        ap.error(f"the following arguments are required: {', '.join(missing)}")
    # SIGTERM (SLURM ending this job, a kill) closes the cluster too, cancelling its jobs; and
    # Ctrl-C raises even where it was ignored when Python started (as gtmsim's CLI does)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _main(args)
    except (KeyboardInterrupt, _Terminated) as stop:
        word = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
        # stopped while the grid was planned, before a first run: no folder, nothing kept
        left = ("" if args.serve or not Path(args.out).exists() else
                f"; the points written are kept in {args.out}: run the same command to resume")
        print(f"slurm_jobqueue: {word}{left}", file=sys.stderr, flush=True)
        sys.exit(130 if isinstance(stop, KeyboardInterrupt) else 143)
    except (ClusterLost, EngineFailed, TaskFailed) as exc:  # not bad input: the run stopped
        _fail(str(exc), 1)
    except GtmsimError as exc:
        _fail(str(exc))


def _main(args: argparse.Namespace) -> None:
    """Check the sweep, then start the cluster and run it (or serve the cluster)."""
    try:  # after the arguments: --help needs no dask-jobqueue
        from dask_jobqueue import SLURMCluster
    except ImportError:
        _fail("dask-jobqueue is not installed: pip install dask-jobqueue")

    plan = None
    if not args.serve:  # a bad config or grid is reported now, not after the queue's wait
        grid = load_grid(args.grid)
        plan = plan_sweep(args.config, args.profile, args.overrides, grid, args.replications,
                          args.seed, args.engine, args.chunk)
        done = prepare_out(Path(args.out), plan, create=False)
        if len(done) == len(plan.points):  # run again for its report: no job to submit
            _sweep(args, plan, None)
            return
    _run(args, plan, SLURMCluster)


def _run(args: argparse.Namespace, plan, SLURMCluster) -> None:  # noqa: N803 (a class)
    """Start the worker jobs, then serve the cluster or run the sweep on it."""
    prologue = ["export NUMBA_NUM_THREADS=1"]
    if args.venv:  # quoted: a path with a space (or a $) is one word in the job script
        activate = Path(args.venv).expanduser() / "bin" / "activate"
        prologue.insert(0, f"source {shlex.quote(str(activate))}")
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
            try:
                client.wait_for_workers(1, timeout=QUEUE_WAIT)  # the queue may take a while
            except TimeoutError:
                _fail(f"no worker job started within {QUEUE_WAIT // 60} minutes; see the "
                      "queue (squeue --me), then run the same command again", 1)
            _sweep(args, plan, client)
    finally:
        cluster.close()


def _sweep(args: argparse.Namespace, plan, client) -> None:
    """Run the points not yet written (on `client`'s cluster), then write the report."""
    summary = run_sweep(plan, args.out, client,
                        lambda done, n: print(f"{done}/{n} replications", flush=True))
    print(f"swept {counted(summary.points, 'points')} x "
          f"{counted(plan.replications, 'replications')}: "
          f"{counted(summary.written, 'points')} run, {summary.skipped} already done")
    page = sweep_report(args.out)
    report = Path(args.out) / "report.html"
    try:  # as the CLI writes it: complete or absent, no temporary file left on a failure
        with staged(report, is_dir=False) as tmp:
            tmp.write_text(page, encoding="utf-8")
    except OSError as exc:
        _fail(f"{args.out}: cannot write {report}: {exc.strerror or exc}")
    print(f"report: {report}")


if __name__ == "__main__":
    main()
