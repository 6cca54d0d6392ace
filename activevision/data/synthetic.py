"""Synthetic house numbers: SVHN-like 32 x 32 RGB digits generated offline, the default world.

Each image shows a centred digit (the label) with parts of neighbouring digits at its left and right, in one
of OpenCV's Hershey fonts, with varied stroke thickness, size, position jitter, small rotation, foreground and
background colours, a background gradient, blur and noise. Image ``i`` depends only on ``(seed, split, i)``.

Why it is not trivial: digits are 35-75 % of the image height, and the smaller a digit, the further it may sit
above or below the centre, so a fixed central glimpse often sees a small digit only at the coarse scale;
a policy that finds the digit and looks at it reads it at full resolution. The label digit's horizontal
offset is kept under 0.3 of its width, so it is always the digit nearest the centre.

Speed: glyph masks are drawn and blurred once per font, thickness and blur level and cached; per image, Python
only joins three masks and warps them (one OpenCV call); colours, gradient and noise are applied to a whole
chunk at once.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from activevision.data.base import GeneratedDataset

__all__ = ["SyntheticHouseNumbers", "HOUSE_NUMBER_SPLITS"]

FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC,
    cv2.FONT_HERSHEY_DUPLEX | cv2.FONT_ITALIC,
    cv2.FONT_HERSHEY_COMPLEX | cv2.FONT_ITALIC,
)
THICKNESS = (2, 4, 6, 8)
GLYPH_HEIGHT = 64  # rows of a cached glyph mask; the digit itself is DIGIT_HEIGHT rows, vertically centred
DIGIT_HEIGHT = 44
SIZE = 32
# Disjoint random streams for the splits, so test images are never train images.
HOUSE_NUMBER_SPLITS = {"train": 0, "test": 1}
DEFAULT_SIZES = {"train": 100_000, "test": 10_000}


BLUR = (0.8, 1.6, 2.6)  # Gaussian sigma of cached glyphs, in glyph pixels (about 0.3-1.6 output pixels)


@functools.cache
def _glyphs(font: int, thickness: int, blur: float) -> tuple[np.ndarray, ...]:
    """Float32 masks (GLYPH_HEIGHT x width) of the digits 0-9, blurred, cropped to their ink plus a margin."""
    scale = cv2.getFontScaleFromHeight(font, DIGIT_HEIGHT, thickness)
    masks = []
    for digit in range(10):
        (width, _), _ = cv2.getTextSize(str(digit), font, scale, thickness)
        canvas = np.zeros((GLYPH_HEIGHT, width + 4 * thickness + 8), np.uint8)
        baseline_y = (GLYPH_HEIGHT + DIGIT_HEIGHT) // 2
        cv2.putText(canvas, str(digit), (2 * thickness + 4, baseline_y), font, scale, 255, thickness, cv2.LINE_AA)
        columns = np.flatnonzero(canvas.max(axis=0))
        glyph = canvas[:, max(columns[0] - 2, 0) : columns[-1] + 3].astype(np.float32) / 255.0
        masks.append(cv2.GaussianBlur(glyph, (0, 0), blur))
    return tuple(masks)


class SyntheticHouseNumbers(GeneratedDataset):
    """Procedural SVHN-like digits, 32 x 32 x 3 uint8, labels 0-9, balanced.

    ``split`` selects a disjoint stream ("train" or "test"); ``size`` is how many images the split has
    (default 100,000 train, 10,000 test; any size, made lazily in chunks); ``seed`` picks the world.
    """

    shape = (SIZE, SIZE, 3)
    num_classes = 10
    dtype = np.dtype(np.uint8)
    meta_fields = ("centre",)  # location (x, y) in [-1, 1] of the label digit's middle

    def __init__(self, split: str = "train", size: int | None = None, seed: int = 0) -> None:
        if split not in HOUSE_NUMBER_SPLITS:
            raise ValueError(
                f"split={split!r} is not allowed for house numbers: choose one of {sorted(HOUSE_NUMBER_SPLITS)}"
            )
        super().__init__(DEFAULT_SIZES[split] if size is None else size, seed, HOUSE_NUMBER_SPLITS[split])
        self.split = split

    def _generate(self, rng: np.random.Generator, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, dict]:
        n = stop - start
        labels = rng.permutation((np.arange(start, stop) + rng.integers(10)) % 10)  # balanced within a chunk
        neighbours = rng.integers(0, 10, size=(n, 2))
        show = rng.random((n, 2)) < 0.85  # a neighbour digit is present on that side
        fonts = rng.integers(0, len(FONTS), n)
        thick = rng.integers(0, len(THICKNESS), n)
        gaps = np.where(show, rng.integers(0, 10, size=(n, 2)), 0)
        height = rng.uniform(0.35, 0.75, n) * SIZE  # digit height in output pixels
        zoom = height / DIGIT_HEIGHT
        angle = np.deg2rad(rng.uniform(-12.0, 12.0, n))
        stretch = rng.uniform(0.8, 1.25, n)  # width / height aspect change
        blur = rng.integers(0, len(BLUR), n)

        # Affine maps strip (x, y) -> output, all at once: stretch x, rotate and zoom about the centre digit.
        widths = np.array([[[g.shape[1] for g in _glyphs(f, t, BLUR[0])] for t in THICKNESS] for f in FONTS])
        left_width = np.where(show[:, 0], widths[fonts, thick, neighbours[:, 0]] + gaps[:, 0], 0)
        x_centre = left_width + widths[fonts, thick, labels] / 2.0
        ink_width = widths[fonts, thick, labels] * zoom * stretch
        shift = np.stack([rng.uniform(-0.3, 0.3, n) * ink_width, rng.uniform(-0.3, 0.3, n) * (SIZE - height)], axis=1)
        cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
        matrix = np.empty((n, 2, 3))
        matrix[:, 0, 0], matrix[:, 0, 1] = cos * stretch, -sin
        matrix[:, 1, 0], matrix[:, 1, 1] = sin * stretch, cos
        anchor = np.stack([x_centre, np.full(n, GLYPH_HEIGHT / 2.0)], axis=1)
        matrix[:, :, 2] = SIZE / 2.0 + shift - np.einsum("nij,nj->ni", matrix[:, :, :2], anchor)

        masks = np.empty((n, SIZE, SIZE), np.float32)
        strip = np.zeros((GLYPH_HEIGHT, 4 * GLYPH_HEIGHT), np.float32)  # reused: glyphs written, warped, erased
        rows = zip(
            fonts.tolist(),
            thick.tolist(),
            labels.tolist(),
            neighbours.tolist(),
            show.tolist(),
            gaps.tolist(),
            matrix,
            masks,
            blur.tolist(),
        )
        for font, width, label, (left, right), (has_left, has_right), (gap_l, gap_r), affine, out, level in rows:
            glyphs = _glyphs(FONTS[font], THICKNESS[width], BLUR[level])
            end = 0
            # (glyph, drawn?, empty columns before it); gaps are 0 on a side without a neighbour.
            for glyph, present, gap in (
                (glyphs[left], has_left, 0),
                (glyphs[label], True, gap_l),
                (glyphs[right], has_right, gap_r),
            ):
                if present:
                    end += gap
                    strip[:, end : end + glyph.shape[1]] = glyph
                    end += glyph.shape[1]
            cv2.warpAffine(
                strip[:, :end],
                affine,
                (SIZE, SIZE),
                dst=out,
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0.0,
            )
            strip[:, :end] = 0.0

        # Colours: background and ink with a luminance gap of at least 0.2; a linear background gradient.
        weights = np.array([0.299, 0.587, 0.114])
        background = rng.uniform(0.0, 1.0, (n, 3))
        ink = rng.uniform(0.0, 1.0, (n, 3))
        weak = np.abs((ink - background) @ weights) < 0.2
        direction = np.where(background @ weights > 0.5, -1.0, 1.0)[:, None]
        ink = np.where(weak[:, None], np.clip(background + direction * rng.uniform(0.3, 0.6, (n, 1)), 0, 1), ink)
        theta = rng.uniform(0, 2 * np.pi, n)
        slope = rng.uniform(0.0, 0.35, n)
        ramp = np.linspace(-0.5, 0.5, SIZE, dtype=np.float32)
        field = (np.cos(theta) * slope).astype(np.float32)[:, None, None] * ramp[None, None, :] + (
            np.sin(theta) * slope
        ).astype(np.float32)[:, None, None] * ramp[None, :, None]
        # Luminance noise, sigma up to 0.04 of full scale (uniform noise of that spread).
        noise = rng.random((n, SIZE, SIZE), dtype=np.float32) - np.float32(0.5)
        noise *= rng.uniform(0.0, 0.14, n).astype(np.float32)[:, None, None]
        field += noise
        # One contiguous (n, 32, 32) plane per channel (numpy is slow at broadcasting over a trailing axis of 3).
        planes = []
        for c in range(3):
            plane = masks * (ink[:, c] - background[:, c]).astype(np.float32)[:, None, None]
            plane += field
            plane += background[:, c].astype(np.float32)[:, None, None]
            planes.append(cv2.multiply(plane.reshape(n * SIZE, SIZE), 255.0, dtype=cv2.CV_8U))  # rounds, saturates
        centre = ((SIZE / 2.0 + shift) / (SIZE / 2.0) - 1.0).astype(np.float32)  # label digit, in [-1, 1]
        return cv2.merge(planes).reshape(n, SIZE, SIZE, 3), labels.astype(np.int64), {"centre": centre}
