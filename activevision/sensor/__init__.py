"""The foveated glimpse sensor, with a numpy backend (single env) and a torch backend (batched, any device):
``geometry`` (where a glimpse looks, the reference glimpse, the context's weights), ``numpy_backend`` and
``torch_backend``.

Geometry: a location (x, y) in [-1, 1]^2 has x to the right and y down; (0, 0) is the image centre and
(-1, -1) the top-left corner, i.e. pixel coordinate ``cx = (x + 1) * W / 2``. Patch ``s`` covers
``patch * scale_factor**s`` pixels per side, its top-left pixel at ``floor(cx - size / 2 + 0.5)``, and is
area-averaged down to ``patch x patch``; pixels outside the image read as 0.

Each output pixel of scale ``s`` is the mean of a ``k x k`` block (``k = scale_factor**s``). Both backends do
the per-image work once per episode (or once per dataset) so that a glimpse costs O(scales * C * patch^2)
whatever the image size: numpy builds per-scale block means of the padded image and reads a strided slice
(fewest Python-level operations, for a fast single env); torch builds exact int64 integral images and reads
four corners per block (one batched gather for thousands of envs). ``tests/test_sensor.py`` proves they agree.

The context (the whole image area-averaged to ``size x size``) is one pair of per-axis weight matrices
(``area_weights``), applied by numpy for one image and by torch for a batch, each image at its own shift.
"""

from activevision.sensor.geometry import (
    GlimpseGeometry,
    PreparedImages,
    area_weights,
    context_image,
    integral_image,
    reference_glimpse,
    translate,
)
from activevision.sensor.numpy_backend import NumpySensor
from activevision.sensor.torch_backend import TorchSensor, context_batch, context_weights

SensorState = PreparedImages  # the name before 0.2, kept for code that imports it

__all__ = [
    "GlimpseGeometry",
    "NumpySensor",
    "PreparedImages",
    "TorchSensor",
    "area_weights",
    "context_batch",
    "context_weights",
    "context_image",
    "integral_image",
    "reference_glimpse",
    "translate",
]
