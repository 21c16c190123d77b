"""Where the book's tasks run: a task is one notebook under one SEED (`Task`), and an engine runs many of them and
yields each result as it finishes. `LocalEngine` is a pool of child processes on this machine (the default);
`RayEngine` hands the tasks to Ray (https://docs.ray.io): an embedded local Ray when no address is given, or an
existing cluster (`ray start --head` on one machine, `ray start --address=<head>:6379` on the others). A task that
dies (its process killed, its worker lost) is retried once; a notebook that raises is not retried (it would raise
again). On Ray a notebook that uses a GPU asks for one (`num_gpus`) when the cluster has GPUs."""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from .execute import execute_notebook

DIED = "died"  # the `error` prefix of a task whose process was lost (retried once)


@dataclass(frozen=True)
class Task:
    """One notebook under one SEED (None: the notebook's own default), written to `target`."""
    notebook: Path
    seed: int | None
    target: Path

    @property
    def name(self) -> str:
        return self.notebook.stem + ("" if self.seed is None else f" (SEED = {self.seed})")


def uses_gpu(notebook: Path) -> bool:
    """Whether a notebook puts work on a GPU when there is one: it calls `get_device()` without `cpu_bound=True`."""
    return bool(re.search(r"get_device\((?![^)]*cpu_bound\s*=\s*True)", Path(notebook).read_text()))


def run_task(notebook_text: str, name: str, profile: str, seed: int | None, timeout: int) -> tuple[dict, str | None]:
    """Execute a notebook given as text, alone in a fresh folder (as Colab would), and return (the result, the
    executed notebook as text). Runs wherever the engine put it: a cluster worker needs rlgen_utils installed, not
    a clone. A lost child process becomes a result whose error starts with `DIED`."""
    with tempfile.TemporaryDirectory(prefix="rlgen-task-") as folder:
        source, target = Path(folder) / f"{name}.ipynb", Path(folder) / "executed" / f"{name}.ipynb"
        source.write_text(notebook_text)
        result = execute_notebook(source, target, profile, timeout=timeout, seed=seed)
        if result["status"] == "failed" and result.get("died"):
            result["error"] = f"{DIED}: {result['error']}"
        return result, target.read_text() if target.exists() else None


class LocalEngine:
    """`jobs` tasks at a time, each in its own child process on this machine."""

    name = "local"

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, jobs)

    def run(self, tasks: list[Task], profile: str, timeout: int = 1800) -> Iterator[tuple[Task, dict]]:
        def attempt(task: Task) -> dict:
            result = execute_notebook(task.notebook, task.target, profile, timeout=timeout, seed=task.seed)
            if not result.get("died"):
                return dict(result, attempts=1)
            return dict(execute_notebook(task.notebook, task.target, profile, timeout=timeout, seed=task.seed), attempts=2)

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {pool.submit(attempt, t): t for t in tasks}
            for future in as_completed(futures):
                yield futures[future], future.result()


class RayEngine:
    """The tasks as Ray tasks, one CPU each (and one GPU for a notebook that uses one, where the cluster has GPUs);
    Ray retries a task whose worker died once (`max_retries=1`)."""

    name = "ray"

    def __init__(self, address: str | None = None, jobs: int | None = None):
        try:
            import ray
        except ImportError:
            raise RuntimeError("the Ray engine needs Ray: `pip install -e '.[cluster]'` (or `make run ENGINE=ray ...`, "
                               "which installs it)") from None
        self.ray, self.started = ray, not ray.is_initialized()
        if self.started:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:  # an embedded local Ray on this machine, as many workers as cores (or --jobs)
                ray.init(num_cpus=jobs or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}})
        self.gpus = ray.cluster_resources().get("GPU", 0)
        self.remote = ray.remote(max_retries=1, num_cpus=1)(_ray_task)

    def run(self, tasks: list[Task], profile: str, timeout: int = 1800) -> Iterator[tuple[Task, dict]]:
        ray = self.ray
        pending = {}
        for task in tasks:
            options = {"num_gpus": 1} if self.gpus and uses_gpu(task.notebook) else {}
            ref = self.remote.options(**options).remote(task.notebook.read_text(), task.notebook.stem, profile,
                                                        task.seed, timeout)
            pending[ref] = task
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            task = pending.pop(ref)
            try:
                result, executed = ray.get(ref)
            except Exception as e:  # the worker died twice, or the cluster lost the task
                result, executed = {"status": "failed", "error": f"{DIED}: {type(e).__name__}: {e}".splitlines()[0],
                                    "peak_rss_mb": None, "peak_gpu_mb": None, "seconds": None}, None
            if executed is not None:
                task.target.parent.mkdir(parents=True, exist_ok=True)
                task.target.write_text(executed)
            yield task, result

    def close(self):
        if self.started:  # a Ray this engine started; one the caller started stays up
            self.ray.shutdown()


def _ray_task(notebook_text: str, name: str, profile: str, seed: int | None, timeout: int):
    """The Ray task: `run_task`, and a lost kernel process counted as a lost worker, so Ray retries it once."""
    result, executed = run_task(notebook_text, name, profile, seed, timeout)
    if str(result.get("error") or "").startswith(DIED):
        os._exit(1)  # the worker dies with its task: Ray's retry of system failures runs it again
    return result, executed
