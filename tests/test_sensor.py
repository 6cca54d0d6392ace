"""The glimpse sensor: numpy and torch backends agree with the plain reference (zero-padded crop + INTER_AREA),
which itself agrees with a pixel-loop reading of the spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from activevision.sensor import GlimpseGeometry, NumpySensor, TorchSensor, reference_glimpse


def independent_reference(image: np.ndarray, loc: np.ndarray, patch: int, scales: int, factor: int) -> np.ndarray:
    """Written from the spec alone, not from the library's geometry: centre at (x+1)*W/2, top-left rounded."""
    height, width, channels = image.shape
    values = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    out = []
    for s in range(scales):
        size = patch * factor**s
        x0 = int(np.floor((loc[0] + 1) * width / 2 - size / 2 + 0.5))
        y0 = int(np.floor((loc[1] + 1) * height / 2 - size / 2 + 0.5))
        crop = np.zeros((size, size, channels))
        for yy in range(max(y0, 0), min(y0 + size, height)):
            for xx in range(max(x0, 0), min(x0 + size, width)):
                crop[yy - y0, xx - x0] = values[yy, xx]
        out.append(
            crop.reshape(patch, size // patch, patch, size // patch, channels).mean(axis=(1, 3)).transpose(2, 0, 1)
        )
    return np.stack(out).astype(np.float32)


SPECIAL = np.array([[0, 0], [-1, -1], [1, 1], [-1, 1], [1, -1], [0, -1], [1, 0], [0.999, -0.999], [0.03125, 0.5]])
# Centres on whole and half pixels of a 28-pixel side, where the floor of the corner rule decides.
SPECIAL = np.concatenate([SPECIAL, np.stack([np.arange(-14, 11, 4), np.arange(-13, 14, 4) + 0.5], 1) / 14.0])


@pytest.mark.parametrize(
    "shape,dtype,patch,scales,factor",
    [
        ((28, 28, 1), np.uint8, 8, 1, 2),
        ((32, 32, 3), np.uint8, 12, 2, 2),
        ((60, 60, 1), np.uint8, 12, 3, 2),
        ((37, 23, 3), np.float32, 5, 3, 3),
        ((100, 100, 1), np.uint8, 12, 4, 2),
    ],
)
def test_backends_agree_with_reference(shape, dtype, patch, scales, factor, device):
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 256, shape).astype(np.uint8) if dtype == np.uint8 else rng.random(shape).astype(np.float32)
        for _ in range(3)
    ]
    locs = np.concatenate([SPECIAL, rng.uniform(-1, 1, (40, 2))])
    numpy_sensor = NumpySensor(patch, scales, factor)
    torch_sensor = TorchSensor(patch, scales, factor, device=device)
    prepared = torch_sensor.prepare(torch.from_numpy(np.stack(images)))
    index = torch.arange(len(locs), device=device) % len(images)
    batched = torch_sensor.glimpse(prepared, torch.from_numpy(locs).to(device), index).cpu().numpy()
    assert batched.shape == (len(locs), scales, shape[2], patch, patch) and batched.dtype == np.float32
    prepared = [numpy_sensor.prepare(image) for image in images]
    for i, loc in enumerate(locs):
        expected = reference_glimpse(images[i % 3], tuple(loc), numpy_sensor.geometry)
        if i < len(SPECIAL) + 5:
            np.testing.assert_allclose(
                independent_reference(images[i % 3], loc, patch, scales, factor),
                expected,
                atol=1e-6,
                err_msg=f"reference at {loc}",
            )
        single = numpy_sensor.glimpse(prepared[i % 3], tuple(loc))
        np.testing.assert_allclose(single, expected, atol=1e-5, err_msg=f"numpy at {loc}")
        np.testing.assert_allclose(batched[i], expected, atol=1e-5, err_msg=f"torch at {loc}")
        assert 0.0 <= single.min() and single.max() <= 1.0


def test_outside_pixels_read_zero_and_centre_is_centred():
    image = np.full((16, 16, 1), 255, np.uint8)
    sensor = NumpySensor(4, 2)
    prepared = sensor.prepare(image)
    corner = sensor.glimpse(prepared, (-1.0, -1.0))
    # The top-left corner is the patch centre: its upper-left quarter is outside and reads 0.
    np.testing.assert_array_equal(corner[0, 0, :2, :2], 0.0)
    np.testing.assert_array_equal(corner[0, 0, 2:, 2:], 1.0)
    boxes = GlimpseGeometry(4, 2).boxes(np.array([0.0, 0.0]), 16, 16)
    np.testing.assert_array_equal(boxes, [[6, 6, 10, 10], [4, 4, 12, 12]])
    glimpse, box = sensor.look(prepared, (1.0, 1.0))
    assert box == (14, 14, 16, 16)


def test_glimpse_reads_only_local_pixels():
    """Changing pixels far from the glimpse leaves it unchanged (it reads its own squares, nothing else)."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    sensor = NumpySensor(6, 2)
    before = sensor.glimpse(sensor.prepare(image), (-0.5, -0.5))
    image[40:, 40:] = 0
    after = sensor.glimpse(sensor.prepare(image), (-0.5, -0.5))
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize(
    "bad,kwargs",
    [
        ("patch", dict(patch=0, scales=1)),
        ("scales", dict(patch=8, scales=0)),
        ("scale_factor", dict(patch=8, scales=2, scale_factor=1)),
        ("patch", dict(patch=8.5, scales=1)),
        ("scales", dict(patch=8, scales=True)),
    ],
)
def test_bad_geometry_is_a_clear_error(bad, kwargs):
    with pytest.raises(ValueError, match=f"{bad}=.* is not allowed"):
        NumpySensor(**kwargs)
    with pytest.raises(ValueError, match=f"{bad}=.* is not allowed"):
        TorchSensor(**kwargs)


@pytest.mark.parametrize("frame", [(28, 28), (40, 33)])
def test_offset_read_equals_the_painted_frame(frame):
    """An image at an offset in a blank frame (shift augmentation, translated worlds), read through the offset,
    equals the glimpse of the painted frame, also where the image sticks out of the frame (its pixels there are
    not in the frame and must read 0). Noise images, so that no border is blank."""
    from activevision.sensor import translate

    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (6, 28, 28, 1), dtype=np.uint8)
    offsets = np.array([[0, 0], [3, -2], [-3, 3], [-5, -5], [12, 6], [-2, 9]])
    locs = rng.uniform(-1, 1, (6, 2))
    locs[0] = [1, 1]
    sensor, numpy_sensor = TorchSensor(8, 3), NumpySensor(8, 3)
    got = sensor.glimpse(
        sensor.prepare(torch.from_numpy(images)), torch.from_numpy(locs), None, torch.from_numpy(offsets), frame
    ).numpy()
    for image, offset, loc, glimpse in zip(images, offsets, locs, got):
        canvas = np.zeros((*frame, 1), np.uint8)
        canvas[:28, :28] = image[: frame[0], : frame[1]]
        painted = translate(canvas, *offset)
        expected = numpy_sensor.glimpse(numpy_sensor.prepare(painted), tuple(loc))
        np.testing.assert_allclose(glimpse, expected, atol=1e-6)


@pytest.mark.parametrize(
    "shape,size", [((28, 28, 1), 16), ((28, 28, 1), 12), ((60, 60, 1), 7), ((54, 64, 3), 16), ((32, 32, 3), 32)]
)
def test_context_equals_opencv_area_resize_and_batch_backend(shape, size):
    """The context (area weights per axis) is OpenCV's INTER_AREA shrink; the batched torch context of each image
    at its shift equals the numpy context of the moved image."""
    import cv2

    from activevision.sensor import context_batch, context_image, translate

    rng = np.random.default_rng(size)
    images = rng.integers(0, 256, (4, *shape), dtype=np.uint8)
    opencv = cv2.resize(images[0].astype(np.float32) / 255.0, (size, size), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(
        context_image(images[0], size), opencv.reshape(size, size, -1).transpose(2, 0, 1), atol=1e-6
    )
    shifts = np.array([[0, 0], [3, -2], [-3, 3], [1, 0]])
    batch = context_batch(torch.as_tensor(images), size, torch.as_tensor(shifts), limit=3).numpy()
    expected = np.stack([context_image(translate(image, *d), size) for image, d in zip(images, shifts)])
    np.testing.assert_allclose(batch, expected, atol=1e-6)
    assert not np.allclose(expected[1], context_image(images[1], size))  # the shift did move the picture
