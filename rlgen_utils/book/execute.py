"""One notebook executed by papermill in a child process under a profile (and a SEED), with its peak host memory
and, on a GPU, its peak GPU memory. `python -m rlgen_utils.book.execute SOURCE TARGET PROFILE TIMEOUT [SEED]` is
the child's entry point; `execute_notebook` starts it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def kernel_env(profile: str, python: str | None = None) -> dict:
    """The environment of a notebook's kernel: the profile, and the interpreter's bin/ (this one, or
    `python`) first on PATH so the 'python3' kernel is the one with rlgen_utils installed."""
    env = dict(os.environ, RLGEN_PROFILE=profile, PYTHONHASHSEED="0")
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend puts figures into the notebook
    # One BLAS/OpenMP thread per kernel: the book's models are small, and spinning OpenMP threads made
    # them 10-50x slower on a loaded 2-core machine. It also makes a run's floats repeatable. Override by setting it.
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PATH"] = str(Path(python or sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def execute_notebook(source: Path, target: Path, profile: str, timeout: int = 1800, python: str | None = None,
                     seed: int | None = None) -> dict:
    """Execute one notebook with papermill in a child process; returns status, seconds, peak RSS, error.

    The child reports the peak resident memory of the kernel it started (getrusage of its children).
    `python` runs child and kernel with another interpreter (the wheel test's clean environment); `seed` sets the
    notebook's SEED parameter (else the notebook's own default, 0).
    """
    source, target = Path(source).resolve(), Path(target).resolve()  # the child runs in the notebook's folder
    target.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [python or sys.executable, "-m", "rlgen_utils.book.execute", str(source), str(target), profile, str(timeout),
         "" if seed is None else str(int(seed))],
        capture_output=True, text=True, env=kernel_env(profile, python), cwd=str(source.parent),
    )
    seconds = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if lines else {  # the child was killed (or crashed) before it could report
        "status": "failed", "error": (proc.stderr.strip().splitlines() or [f"the runner's child process died ({proc.returncode})"])[-1],
        "peak_rss_mb": None, "peak_gpu_mb": None, "died": True,
    }
    result["seconds"] = round(seconds, 1)
    return result


# Appended to every notebook the runner executes, and removed from its output: the kernel's peak GPU memory.
GPU_STATS_TAG = "rlgen-gpu-stats"
GPU_STATS_CELL = """import sys as _sys, json as _json
_torch = _sys.modules.get("torch")
_cuda = _torch is not None and _torch.cuda.is_available() and _torch.cuda.is_initialized()
print(_json.dumps({"peak_gpu_mb": round(_torch.cuda.max_memory_allocated() / 2**20, 1) if _cuda else None}))"""


def _execute_child(source: str, target: str, profile: str, timeout: str, seed: str = ""):
    import resource

    import nbformat
    import papermill

    status, error, gpu, died = "ok", None, {"peak_gpu_mb": None}, False
    nb = nbformat.read(source, as_version=4)
    stats_cell = nbformat.v4.new_code_cell(GPU_STATS_CELL, metadata={"tags": [GPU_STATS_TAG]})
    nb.cells.append(stats_cell)
    staged = Path(target).with_name(f".{Path(target).stem}.input.ipynb")  # beside the output, not in notebooks/
    nbformat.write(nb, staged)
    try:
        papermill.execute_notebook(
            str(staged), target, parameters={"PROFILE": profile, **({"SEED": int(seed)} if seed else {})}, kernel_name="python3", cwd=str(Path(source).parent),
            progress_bar=False, log_output=False, execution_timeout=int(timeout),
        )
    except papermill.PapermillExecutionError as e:
        status, error = "failed", f"{e.ename}: {e.evalue}"
    except Exception as e:  # a kernel that died, a timeout, an unreadable notebook
        status, error = "failed", f"{type(e).__name__}: {e}"
        died = type(e).__name__ == "DeadKernelError"  # the kernel's process was lost: worth one more try
    finally:
        staged.unlink(missing_ok=True)
    if Path(target).exists():  # read the stats cell's output, then drop the cell
        executed = nbformat.read(target, as_version=4)
        for cell in executed.cells:
            if GPU_STATS_TAG in cell.metadata.get("tags", []):
                text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
                gpu = json.loads(text) if text.strip().startswith("{") else gpu
        executed.cells = [c for c in executed.cells if GPU_STATS_TAG not in c.metadata.get("tags", [])]
        nbformat.write(executed, target)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB
    print(json.dumps({"status": status, "error": error, "peak_rss_mb": round(peak_kb / 1024, 1), "died": died, **gpu}))


if __name__ == "__main__":
    _execute_child(*sys.argv[1:])
