"""Drawing one shapes image from its attributes (notebook 01 introduces the images; notebooks 09-11 generate them).

``CLASSES`` is the vocabulary (shape, colour, texture, size, position); :func:`render_array` draws one image with
numpy, supersampled for smooth edges, with a little seeded jitter and pixel noise. :mod:`.shapes` builds the
dataset, its attribute table and its splits on top of it.
"""
from __future__ import annotations

import numpy as np

CLASSES: dict[str, list[str]] = {
    "shape": ["circle", "square", "triangle", "cross", "diamond"],
    "colour": ["red", "green", "blue", "yellow", "purple", "orange"],
    "texture": ["solid", "striped", "dotted"],
    "size": ["small", "large"],
    "position": ["left", "center", "right"],
}
ATTRIBUTES = tuple(CLASSES)
RGB = {"red": (0.90, 0.12, 0.10), "green": (0.15, 0.70, 0.20), "blue": (0.15, 0.30, 0.95),
       "yellow": (0.95, 0.88, 0.15), "purple": (0.58, 0.20, 0.80), "orange": (0.98, 0.55, 0.05)}
HALF_SIZE = {"small": 0.21, "large": 0.29}            # half-width of the shape, as a fraction of the image
CENTER_X = {"left": 0.31, "center": 0.50, "right": 0.69}
SUPERSAMPLE = 4  # shapes are drawn at 4x and averaged down: smooth edges at 16x16


# -- rendering -----------------------------------------------------------------------------------

def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test in shape coordinates (u, v in [-1, 1] span the shape; v grows downwards)."""
    au, av = np.abs(u), np.abs(v)
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(au, av) <= 0.85  # 0.85: about the same area as the circle
    if shape == "diamond":
        return au + av <= 1.05
    if shape == "triangle":
        return (v <= 0.8) & (v >= -1.0 + 2.0 * au)
    if shape == "cross":
        return ((au <= 0.3) & (av <= 1.0)) | ((av <= 0.3) & (au <= 1.0))
    raise ValueError(f"shape={shape!r}; allowed values: {', '.join(CLASSES['shape'])}")


def render_array(shape: str, colour: str, texture: str = "solid", size: str = "large",
                 position: str = "center", seed: int = 0, resolution: int = 16) -> np.ndarray:
    """Draw one image as a float32 array (3, H, W) in [0, 1]; deterministic given the arguments."""
    for attr, value in zip(ATTRIBUTES, (shape, colour, texture, size, position)):
        if value not in CLASSES[attr]:
            raise ValueError(f"{attr}={value!r}; allowed values: {', '.join(CLASSES[attr])}")
    rng = np.random.default_rng(seed)
    n, ss = resolution, SUPERSAMPLE
    cx = (CENTER_X[position] + rng.uniform(-0.04, 0.04)) * n
    cy = (0.5 + rng.uniform(-0.08, 0.08)) * n
    r = HALF_SIZE[size] * rng.uniform(0.93, 1.07) * n
    fine = (np.arange(n * ss) + 0.5) / ss                      # supersampled pixel centres
    v, u = np.meshgrid((fine - cy) / r, (fine - cx) / r, indexing="ij")
    alpha = _shape_mask(shape, u, v).reshape(n, ss, n, ss).mean(axis=(1, 3))[None]
    # Texture on the output pixel grid (crisp at 16x16): stripes 1 px wide, dots every 3 px (x2 at 32x32).
    w = max(1, n // 16)
    rows, cols = np.meshgrid(np.arange(n) // w, np.arange(n) // w, indexing="ij")
    phase = int(rng.integers(0, 3))
    strong = {"solid": np.ones((n, n), bool),
              "striped": (rows + phase) % 2 == 0,
              "dotted": ((rows + phase) % 3 == 0) & ((cols + phase) % 3 == 0)}[texture]
    rgb = np.clip(np.asarray(RGB[colour]) + rng.normal(0, 0.03, 3), 0, 1)[:, None, None]
    pale = 0.35 * rgb + 0.65
    fill = np.where(strong[None], rgb, pale)
    background = 0.08 + rng.uniform(0, 0.06)
    img = background * (1 - alpha) + fill * alpha + rng.normal(0, 0.02, (3, n, n))
    return np.clip(img, 0, 1).astype(np.float32)
