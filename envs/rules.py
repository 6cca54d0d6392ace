"""Episode and reward rules of every glimpse world, written once for numpy arrays and torch tensors alike.

The single env calls them with shape-``()`` or small arrays, the batched env with batches; only operators
and methods both libraries share are used, so the two cannot drift apart.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "ACTION_MODES",
    "REWARD_MODES",
    "STARTS",
    "ORDERS",
    "default_grid",
    "cell_centres",
    "grid_centres",
    "continuous_step",
    "discrete_step",
    "continuous_reward",
    "discrete_reward",
    "covered_fraction",
]

ACTION_MODES = ("continuous", "discrete")
REWARD_MODES = ("final", "dense")
STARTS = ("center", "random", "choose")  # choose: no glimpse at reset, the first action places it
ORDERS = ("random", "sequential")  # how reset picks images: seeded draws, or index + stride per episode


def default_grid(height: int, width: int, patch: int) -> int:
    """Cells per side of the discrete-mode grid: how many finest patches tile the longer image side, rounded up."""
    return math.ceil(max(height, width) / patch)


def cell_centres(cell: Any, grid: int) -> Any:
    """Locations ``(..., 2)`` (float64) of the centres of grid cells ``cell`` (integers, numpy or torch), row-major:
    cell ``a`` is row ``a // grid``, column ``a % grid``; each ``(x, y)`` in [-1, 1]. Computed per cell, never as a
    table: a fine grid over a huge canvas has millions of cells."""
    if isinstance(cell, (np.ndarray, np.generic, int)):
        cells = np.asarray(cell)
        column, row = (cells % grid).astype(np.float64), (cells // grid).astype(np.float64)
        return np.stack([(2.0 * column + 1.0) / grid - 1.0, (2.0 * row + 1.0) / grid - 1.0], axis=-1)
    import torch

    column, row = (cell % grid).double(), (cell // grid).double()  # float64, as numpy: the same locations
    return torch.stack([(2.0 * column + 1.0) / grid - 1.0, (2.0 * row + 1.0) / grid - 1.0], dim=-1)


def grid_centres(grid: int) -> np.ndarray:
    """All ``(grid * grid, 2)`` cell centres, row-major (``cell_centres`` of every cell)."""
    return cell_centres(np.arange(grid * grid), grid)


def continuous_step(steps: Any, n_glimpses: int, chosen_start: bool = False) -> Any:
    """Continuous mode, after the step counter was advanced: does this step end the episode?

    The first glimpse is taken at reset; steps 1 .. T-1 take glimpses 2 .. T; step T gives the last answer. With
    ``chosen_start`` (start "choose") the reset takes none: steps 1 .. T take glimpses 1 .. T, step T + 1 answers.
    """
    return steps >= n_glimpses + int(chosen_start)


def discrete_step(action: Any, cells: int, glimpses: Any, n_glimpses: int) -> tuple[Any, Any, Any, Any]:
    """Discrete mode: what an action does, given the glimpses taken so far.

    Returns ``(answered, prediction, glimpsed, done)``: an action ``>= cells`` answers class ``action - cells``
    (prediction -1 otherwise); a glimpse action takes a glimpse only while budget is left; the episode is done
    at an answer or at a glimpse action once the budget is spent.
    """
    answered = action >= cells
    looking = action < cells
    glimpsed = looking & (glimpses < n_glimpses)
    done = answered | (glimpses >= n_glimpses)
    prediction = (action - cells) * answered - looking * 1
    return answered, prediction, glimpsed, done


def continuous_reward(correct: Any, last: Any, reward_mode: str, n_glimpses: int) -> Any:
    """Reward of a continuous-mode step whose prediction is ``correct`` (bool), ``last`` if it ends the episode.

    "final": 1 for a right last prediction, else 0. "dense": 1/T for every right prediction.
    """
    if reward_mode == "final":
        return (correct & last) * 1.0
    return correct * (1.0 / n_glimpses)


def discrete_reward(answered: Any, correct: Any, glimpsed: Any, glimpse_cost: float) -> Any:
    """Reward of a discrete-mode step: 1 for a right answer, minus ``glimpse_cost`` for a glimpse taken.

    A glimpse asked for after the budget is spent is not taken: that step ends the episode with reward 0.
    """
    return (answered & correct) * 1.0 - glimpsed * glimpse_cost


def covered_fraction(boxes: Any, count: Any, height: int, width: int) -> Any:
    """Fraction of the image's pixels inside at least one box.

    ``boxes`` ``(..., T, 4)`` are ``[x0, y0, x1, y1)`` pixel boxes (unclipped); only the first ``count``
    (``(...,)``) of each row count. Exact union by coordinate compression: O(T^3) per row, independent
    of the image size.
    """
    steps = boxes.shape[-2]
    arange = np.arange(steps) if isinstance(boxes, np.ndarray) else _torch_arange(steps, boxes)
    valid = arange < count[..., None]
    x0, y0 = boxes[..., 0].clip(0, width), boxes[..., 1].clip(0, height)
    x1, y1 = boxes[..., 2].clip(0, width) * valid, boxes[..., 3].clip(0, height) * valid  # unused: empty
    xs, ys = _sort(_cat(x0, x1, axis=-1), axis=-1), _sort(_cat(y0, y1, axis=-1), axis=-1)
    dx, dy = xs[..., 1:] - xs[..., :-1], ys[..., 1:] - ys[..., :-1]
    mid_x, mid_y = xs[..., :-1] + dx / 2.0, ys[..., :-1] + dy / 2.0  # (..., 2T-1) cell centres
    in_x = (x0[..., None, :] <= mid_x[..., :, None]) & (mid_x[..., :, None] < x1[..., None, :])  # (..., 2T-1, T)
    in_y = (y0[..., None, :] <= mid_y[..., :, None]) & (mid_y[..., :, None] < y1[..., None, :])
    # Cell (i, j) is covered if some box holds both its row i and its column j: a boolean matrix product.
    covered = _as_float(_as_float(in_y, dx) @ _as_float(in_x, dx).swapaxes(-1, -2) > 0, dx)
    area = (dy[..., None, :] @ covered @ dx[..., :, None])[..., 0, 0]
    return area / float(height * width)


def _as_float(mask: Any, like: Any) -> Any:
    """A boolean array as floats of ``like``'s dtype (numpy or torch)."""
    return mask.astype(like.dtype) if isinstance(mask, np.ndarray) else mask.to(like.dtype)


def _torch_arange(n: int, like: Any) -> Any:
    import torch

    return torch.arange(n, device=like.device)


def _cat(a: Any, b: Any, axis: int) -> Any:
    if isinstance(a, np.ndarray):
        return np.concatenate([a, b], axis=axis)
    import torch

    return torch.cat([a, b], dim=axis)


def _sort(a: Any, axis: int) -> Any:
    if isinstance(a, np.ndarray):
        return np.sort(a, axis=axis)
    return a.sort(dim=axis).values
