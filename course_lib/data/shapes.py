"""Procedural shape images with captions and attribute labels (notebook 01; the image notebooks 09-11).

Every image is one shape x colour x texture x size x position, drawn with numpy from its attributes and
a seed (a little jitter and pixel noise, so no two images are identical), and captioned
"a small red striped circle on the left". The attribute table ships as ``data/shapes_attributes.csv``
(generated with seed 0, hash-checked on load); the images are rendered from it.

    shapes = cl.data.shapes.load(rt)            # or load(mode="fast")
    split = shapes.split("purple triangle")     # forget = training images showing a purple triangle

Regenerate the table with ``python -m course_lib.data.shapes --write``.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .shapes_draw import ATTRIBUTES, CLASSES, RGB, render_array  # noqa: F401  (the vocabulary and the drawing)

WHERE = {"left": "on the left", "center": "in the center", "right": "on the right"}

CSV_NAME = "shapes_attributes.csv"
CSV_SHA256 = "6fe1bc43d8d2cd2e79a2ce03ac79448f6c5ad7d703af055d4bd8951643d8acc2"
NUM_BLOCKS = 8   # the table is 8 blocks; each block holds every one of the 540 combinations once
TEST_PER_BLOCK = 90  # 1 image in 6 is held out for testing
# Per mode: how many blocks to use (images = 540 x blocks) and the resolution.
PRESETS = {
    "fast": {"blocks": 5, "resolution": 16},     # default's: fast mode uses default's models (mode_aliases)
    "default": {"blocks": 5, "resolution": 16},  # 2700 images (2250 train); about 0.8 s
    "full": {"blocks": 8, "resolution": 32},     # 4320 images at 32x32
}


class DataIntegrityError(ValueError):
    """A shipped data file does not match the hash the code expects."""


def caption(shape: str, colour: str, texture: str, size: str, position: str) -> str:
    """The caption of an image: ``"a small red striped circle on the left"``."""
    return f"a {size} {colour} {texture} {shape} {WHERE[position]}"


def parse_concept(concept: str) -> dict[str, str]:
    """``"purple triangle"`` -> ``{"colour": "purple", "shape": "triangle"}``: the attribute values a concept
    names (one value or a combination, any order). Unknown words and two values of one attribute are errors."""
    known = {v: a for a, vals in CLASSES.items() for v in vals}
    wanted: dict[str, str] = {}
    for token in concept.lower().replace(",", " ").split():
        if token not in known:
            listing = "; ".join(f"{a}: {', '.join(v)}" for a, v in CLASSES.items())
            raise ValueError(f"concept={concept!r}: {token!r} is not an attribute value. Known values: {listing}")
        attr = known[token]
        if attr in wanted and wanted[attr] != token:
            raise ValueError(f"concept={concept!r} names two {attr}s ({wanted[attr]}, {token}); no image has both")
        wanted[attr] = token
    if not wanted:
        raise ValueError(f"concept={concept!r} is empty; name one or more attribute values, e.g. 'red circle'")
    return wanted


# -- the attribute table ---------------------------------------------------------------------------

def generate_table(seed: int = 0, num_blocks: int = NUM_BLOCKS) -> list[dict]:
    """The attribute table: ``num_blocks`` shuffled blocks of all 540 combinations, 90 per block held out."""
    rng = np.random.default_rng(seed)
    combos = list(itertools.product(*CLASSES.values()))
    rows = []
    for block in range(num_blocks):
        order = rng.permutation(len(combos))
        test = set(rng.choice(len(combos), TEST_PER_BLOCK, replace=False).tolist())
        for j, c in enumerate(order):
            i = len(rows)
            rows.append({"id": f"img{i:04d}", **dict(zip(ATTRIBUTES, combos[c])),
                         "seed": int(rng.integers(0, 2**31)), "subset": "test" if j in test else "train"})
    return rows


def table_bytes(rows: list[dict]) -> bytes:
    """The csv file's exact bytes (written by hand: byte-identical on every platform and pandas version)."""
    cols = ["id", *ATTRIBUTES, "seed", "subset"]
    lines = [",".join(cols)] + [",".join(str(row[c]) for c in cols) for row in rows]
    return ("\n".join(lines) + "\n").encode("ascii")


def csv_path(data_dir: Path | None = None) -> Path:
    from ..runtime import DATA_DIR

    return Path(data_dir or DATA_DIR) / CSV_NAME


def read_table(data_dir: Path | None = None):
    """Read and hash-check ``data/shapes_attributes.csv``; returns a pandas DataFrame."""
    import io

    import pandas as pd

    path = csv_path(data_dir)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; regenerate it with `python -m course_lib.data.shapes --write`")
    raw = path.read_bytes()
    actual = hashlib.sha256(raw).hexdigest()
    if actual != CSV_SHA256:
        raise DataIntegrityError(f"{path} does not match the kit: sha256 expected {CSV_SHA256}, got {actual}. "
                                 "Regenerate it with `python -m course_lib.data.shapes --write`.")
    return pd.read_csv(io.BytesIO(raw), dtype={"seed": "int64"})


@dataclass
class ImageSplit:
    """A forget request on the shapes data: indices into :class:`ShapesData` arrays.

    ``forget``: training images to forget; ``retain``: the other training images; ``forget_test`` /
    ``retain_test``: the same split of the held-out test images.
    """

    concept: str
    forget: np.ndarray
    retain: np.ndarray
    forget_test: np.ndarray
    retain_test: np.ndarray
    data: "ShapesData | None" = field(default=None, repr=False, compare=False)

    def subset(self, which: str, n: int | None = None, seed: int = 0) -> "ShapesSubset":
        """``"forget"``, ``"retain"``, ``"forget_test"`` or ``"retain_test"`` as a :class:`ShapesSubset`
        (the images themselves) for the image unlearning methods (notebooks 09, 10); ``n``: that many, seeded."""
        if which not in ("forget", "retain", "forget_test", "retain_test"):
            raise ValueError(f"which={which!r}; allowed values: 'forget', 'retain', 'forget_test', 'retain_test'")
        if self.data is None:
            raise ValueError("this ImageSplit has no data attached; make it with shapes.split(concept)")
        idx = getattr(self, which)
        if n is not None and (not isinstance(n, int) or n < 1):
            raise ValueError(f"n={n!r}: give a positive number of images (or None for all {len(idx)})")
        if n is not None and n < len(idx):
            idx = idx[np.sort(np.random.default_rng([seed, 9]).choice(len(idx), size=n, replace=False))]
        return self.data.subset(idx, concept=self.concept if "forget" in which else None)

    @property
    def forget_set(self) -> "ShapesSubset":
        return self.subset("forget")

    @property
    def retain_set(self) -> "ShapesSubset":
        return self.subset("retain")

    def __repr__(self) -> str:
        return (f"ImageSplit({self.concept!r}: forget={len(self.forget)}, retain={len(self.retain)}, "
                f"forget_test={len(self.forget_test)}, retain_test={len(self.retain_test)})")


@dataclass
class ShapesSubset:
    """Some images of a :class:`ShapesData` with their captions and labels: a forget or retain set for
    image unlearning (``cl.unlearn(clip, forget=split.forget_set, retain=split.retain_set, ...)``).

    ``concept``: the erased concept for a forget set (ESD and concept ablation use the prompt, not the
    images). Indexing gives ``{"image", "caption", "index", <attribute>: label}`` for a DataLoader.
    """

    indices: np.ndarray
    images: torch.Tensor
    captions: list
    labels: dict
    ids: list
    concept: str | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "caption": self.captions[i], "index": int(self.indices[i]),
                **{a: self.labels[a][i] for a in self.labels}}

    def __repr__(self) -> str:
        return f"ShapesSubset({len(self)} images" + (f", concept={self.concept!r})" if self.concept else ")")


class ShapesData:
    """The rendered dataset: ``images`` (N, 3, H, W) in [0, 1], ``captions``, ``labels``, ``attributes``."""

    def __init__(self, attributes, images: torch.Tensor, resolution: int, mode: str):
        self.attributes = attributes
        self.images = images
        self.resolution = resolution
        self.mode = mode
        self.classes = {k: list(v) for k, v in CLASSES.items()}
        self.captions: list[str] = attributes["caption"].tolist()
        self.labels = {a: torch.tensor([CLASSES[a].index(x) for x in attributes[a]], dtype=torch.long)
                       for a in ATTRIBUTES}
        subset = attributes["subset"].to_numpy()
        self.train = np.flatnonzero(subset == "train")
        self.test = np.flatnonzero(subset == "test")
        self.ids: list[str] = attributes["id"].tolist()

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return (f"ShapesData(mode={self.mode!r}, {len(self)} images {self.resolution}x{self.resolution}, "
                f"train={len(self.train)}, test={len(self.test)})")

    def subset(self, indices, concept: str | None = None) -> ShapesSubset:
        """The images at ``indices`` (e.g. ``split.forget``) with captions and labels."""
        idx = np.asarray(indices, dtype=np.int64)
        t = torch.from_numpy(idx)
        return ShapesSubset(idx, self.images[t], [self.captions[i] for i in idx],
                            {a: v[t] for a, v in self.labels.items()}, [self.ids[i] for i in idx], concept)

    def concept_mask(self, concept: str) -> np.ndarray:
        """Boolean mask of the images showing ``concept`` ("circle", "red", "purple triangle", ...)."""
        mask = np.ones(len(self), bool)
        for attr, value in parse_concept(concept).items():
            mask &= self.attributes[attr].to_numpy() == value
        return mask

    def split(self, concept: str) -> ImageSplit:
        """Forget every training image showing ``concept`` (one value or a combination, any order)."""
        mask = self.concept_mask(concept)
        return ImageSplit(concept, forget=self.train[mask[self.train]], retain=self.train[~mask[self.train]],
                          forget_test=self.test[mask[self.test]], retain_test=self.test[~mask[self.test]], data=self)

    def random_split(self, fraction: float = 0.05, seed: int = 0) -> ImageSplit:
        """Forget a random ``fraction`` of the training images (one user's uploads, say); the test images are
        split in the same proportion (``forget_test``: images like them that were never trained on)."""
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        rng = np.random.default_rng([seed, 1])  # its own stream: independent of the model's seed use
        mask = np.zeros(len(self), bool)
        for idx in (self.train, self.test):
            mask[rng.choice(idx, max(1, round(fraction * len(idx))), replace=False)] = True
        return ImageSplit(f"random {fraction:g} (seed {seed})", forget=self.train[mask[self.train]],
                          retain=self.train[~mask[self.train]], forget_test=self.test[mask[self.test]],
                          retain_test=self.test[~mask[self.test]], data=self)

    def render(self, shape: str, colour: str, texture: str = "solid", size: str = "large",
               position: str = "center", seed: int = 0) -> torch.Tensor:
        """Draw one new image (3, H, W) at this dataset's resolution."""
        return torch.from_numpy(render_array(shape, colour, texture, size, position, seed, self.resolution))


@functools.lru_cache(maxsize=4)
def _render_all(data_dir: str, blocks: int, resolution: int, stamp: tuple):
    # ``stamp`` (the csv's size and mtime) is part of the cache key: an edited file is read and checked again.
    table = read_table(Path(data_dir)).iloc[: blocks * 540].reset_index(drop=True)
    images = np.stack([render_array(r.shape, r.colour, r.texture, r.size, r.position, int(r.seed), resolution)
                       for r in table.itertuples()])
    images.setflags(write=False)
    return table, images


def load(rt=None, mode: str | None = None) -> ShapesData:
    """The shapes dataset for ``rt.mode`` (or ``mode``): see :data:`PRESETS` for sizes per mode."""
    from ..runtime import DATA_DIR, check_mode

    mode = check_mode(mode or (rt.mode if rt is not None else "default"))
    preset = PRESETS[mode]
    data_dir = getattr(rt, "data_dir", None) or DATA_DIR
    path = csv_path(data_dir)
    stat = path.stat() if path.is_file() else None
    stamp = (stat.st_size, stat.st_mtime_ns) if stat else None
    table, images = _render_all(str(data_dir), preset["blocks"], preset["resolution"], stamp)
    table = table.copy()
    table["caption"] = [caption(*row) for row in table[list(ATTRIBUTES)].itertuples(index=False)]
    table = table[["id", *ATTRIBUTES, "caption", "subset", "seed"]]
    return ShapesData(table, torch.tensor(images), preset["resolution"], mode)


def data_hash(mode: str) -> str:
    """What identifies the data of a mode (for the zoo's cache key): the csv hash, blocks and resolution."""
    p = PRESETS[mode]
    return f"{CSV_SHA256[:16]}-b{p['blocks']}-r{p['resolution']}"


def main(argv=None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Write data/shapes_attributes.csv (seed 0) and print its sha256.")
    ap.add_argument("--write", action="store_true", help="write the file (otherwise only print the hash)")
    args = ap.parse_args(argv)
    raw = table_bytes(generate_table())
    digest = hashlib.sha256(raw).hexdigest()
    if args.write:
        csv_path().write_bytes(raw)
        print(f"wrote {csv_path()} ({len(raw)} bytes)")
    print(f"sha256 {digest}" + ("" if digest == CSV_SHA256 else "  (differs from CSV_SHA256 in shapes.py: update it)"))


if __name__ == "__main__":
    main()
