"""The house figure style and the few figures that recur across notebooks."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

HOUSE_STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 90,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.frameon": False,
    "legend.fontsize": 9,
}


def use_house_style():
    """Apply the book's matplotlib style (called once per notebook); in a notebook, draw figures inline
    even where the environment sets another backend (e.g. MPLBACKEND=Agg for batch runs)."""
    plt.rcParams.update(HOUSE_STYLE)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        shell.run_line_magic("matplotlib", "inline")


def image_grid(images, image_shape, nrow: int | None = None, ax=None, title: str | None = None, pad: int = 1,
               pad_value: float = 0.0):
    """Show a batch of flattened (n, h*w) images in [0, 1] (0 = background, drawn white; 1 = ink, black) as one
    grid image. The gaps between images and empty cells are filled with `pad_value`, the background by default,
    so the digits sit on one sheet instead of in black frames."""
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    h, w = image_shape
    n = len(x)
    nrow = nrow or int(np.ceil(np.sqrt(n)))
    ncol = int(np.ceil(n / nrow))
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad), float(pad_value))
    for i, img in enumerate(x.reshape(n, h, w)):
        r, c = divmod(i, nrow)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    ax = ax or plt.gca()
    ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():  # one sheet of images: no axis lines around it
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def mean_and_band(ax, x, runs, label: str | None = None, color=None, band: str = "std"):
    """Plot the mean over runs (rows) with a shaded band: "std" (±1 sd) or "ci95" (±1.96 sem)."""
    runs = np.asarray(runs, dtype=float)
    mean = runs.mean(axis=0)
    spread = runs.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
    if band == "ci95":
        spread = 1.96 * spread / np.sqrt(max(len(runs), 1))
    elif band != "std":
        raise ValueError(f"unknown band {band!r}: use 'std' or 'ci95'")
    (line,) = ax.plot(x, mean, label=label, color=color)
    ax.fill_between(x, mean - spread, mean + spread, color=line.get_color(), alpha=0.2, linewidth=0)
    return line
