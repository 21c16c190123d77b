"""Publishing an executed notebook as the book's committed version: outputs kept and cleaned (progress-bar refreshes
collapsed to their final state), papermill's injected parameters and metadata dropped, the run's facts (seconds,
memory, machine) kept in the notebook's metadata for the website's results page."""
from __future__ import annotations

import json
from pathlib import Path

from .contents import NOTEBOOKS


def final_text(text: str) -> str:
    """What a terminal shows for `text`: each line keeps only what follows its last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def collapse_streams(outputs: list) -> list:
    """Merge consecutive stream outputs of one name and resolve carriage returns, so a progress bar is
    committed as its final state rather than as hundreds of refreshes."""
    merged = []
    for out in outputs:
        if out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                and merged[-1]["name"] == out["name"]:
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    for out in merged:
        if out.get("output_type") == "stream":
            out["text"] = final_text(out["text"])
    return merged


def publish(executed: Path, directory: Path = NOTEBOOKS) -> Path:
    """Copy an executed notebook back into notebooks/ as its committed version: the outputs stay, the
    cell papermill injected (which pins PROFILE) and papermill's metadata go, so nbval and readers
    still get the profile from the environment."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("jupytext", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = collapse_streams(cell.outputs)
    run = Path(executed).resolve().parent.parent / "records.json"  # the runner's OUT/records.json, when there
    try:
        facts = json.loads(run.read_text())
        result = facts["notebooks"][Path(executed).stem]
        nb.metadata["rlgen"] = {k: result.get(k) for k in ("profile", "seconds", "peak_rss_mb", "peak_gpu_mb")}
        nb.metadata["rlgen"]["machine"] = {k: facts["machine"].get(k) for k in ("cpu", "cpu_cores", "gpu", "torch", "date")}
    except (OSError, ValueError, KeyError):
        pass  # published from elsewhere: no run facts to keep
    target = Path(directory) / Path(executed).name
    nbformat.write(nb, target)
    return target
