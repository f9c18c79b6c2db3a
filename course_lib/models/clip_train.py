"""Training the tiny CLIP and its zoo recipe ``"shapes-clip"`` (notebook 10; the model is in ``clip.py``).

Contrastive training with the kit's loop on the shapes images and their captions, with one-attribute
hard negatives in every batch (see :class:`_CaptionBatches`).
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..data import shapes as shapes_data
from . import zoo
from .clip import ClipPreset, PRESETS, ShapesCLIP, build_tokenizer, new_clip_model, pixel_values  # noqa: F401


class _CaptionBatches:
    """Collate indices into ``{"pixel_values", "input_ids", "attention_mask"}`` (captions pre-tokenized).

    Hard negatives: each sampled image brings a partner that differs from it in exactly one attribute
    (chosen at random). In a random batch two images rarely differ in the shape alone, so the loss
    could be met from colour, size and position; partners make every attribute count (as NegCLIP,
    Yuksekgonul et al. 2023, adds hard negatives to CLIP training). The loss is the CLIP loss.
    """

    def __init__(self, data, indices, tokenizer, hard_negatives: bool = True, seed: int = 0):
        enc = tokenizer(list(data.captions), padding=True, return_tensors="pt", return_token_type_ids=False)
        self.images, self.ids, self.mask = data.images, enc["input_ids"], enc["attention_mask"]
        self.hard = hard_negatives
        self.gen = torch.Generator().manual_seed(seed + 104729)
        labels = torch.stack([data.labels[a] for a in shapes_data.ATTRIBUTES], 1).tolist()
        self.groups: dict = {}  # (attribute, the other attributes' values) -> training indices
        for i in indices:
            for a in range(len(shapes_data.ATTRIBUTES)):
                key = (a, tuple(v for j, v in enumerate(labels[i]) if j != a))
                self.groups.setdefault(key, []).append(int(i))
        self.labels = labels

    def partner(self, i: int) -> int:
        a = int(torch.randint(len(shapes_data.ATTRIBUTES), (1,), generator=self.gen))
        key = (a, tuple(v for j, v in enumerate(self.labels[i]) if j != a))
        others = [k for k in self.groups.get(key, ()) if self.labels[k][a] != self.labels[i][a]]
        return others[int(torch.randint(len(others), (1,), generator=self.gen))] if others else i

    def __call__(self, idx):
        idx = [int(i) for i in idx]
        if self.hard:
            idx = idx + [self.partner(i) for i in idx]
        i = torch.as_tensor(idx)
        return {"pixel_values": pixel_values(self.images[i]), "input_ids": self.ids[i], "attention_mask": self.mask[i]}


def clip_loss(model, batch) -> dict:
    """The CLIP loss (``return_loss=True``) on a batch; logs the temperature."""
    out = model(**batch, return_loss=True)
    return {"loss": out.loss, "logit_scale": model.logit_scale.detach().exp()}


def train_shapes_clip(data, preset: ClipPreset, indices, *, seed: int = 0, device="cpu", callbacks=(),
                      progress: bool = True) -> ShapesCLIP:
    """Train a fresh :class:`ShapesCLIP` on the images ``data.images[indices]`` and their captions."""
    from ..runtime import seed_everything
    from ..train import TrainConfig, fit

    seed_everything(seed)
    tok = build_tokenizer(max_length=preset.max_length)
    clip = ShapesCLIP(new_clip_model(tok, preset, data.resolution).to(device), tok)
    idx = [int(i) for i in indices]
    collate = _CaptionBatches(data, idx, tok, hard_negatives=preset.hard_negatives, seed=seed)
    cfg = TrainConfig(num_steps=preset.num_steps, batch_size=preset.batch_size, lr=preset.lr,
                      warmup_steps=preset.warmup_steps, weight_decay=0.1, seed=seed, desc="shapes-clip",
                      progress=progress)
    clip.train_result = fit(clip.model, idx, clip_loss, cfg, collate_fn=collate, callbacks=callbacks, device=device)
    clip.model.eval()
    return clip


def heldout_zero_shot(clip: ShapesCLIP, data) -> dict[str, float]:
    """Zero-shot accuracy per attribute on the held-out test images (prompt ensembling)."""
    return {a: round(v, 4) for a, v in clip.attribute_accuracies(data.subset(data.test)).items()}


class ShapesCLIPRecipe(zoo.Recipe):
    """Zoo recipe "shapes-clip": the tiny CLIP trained on the shapes training images and captions."""

    name = "shapes-clip"
    mode_aliases = {"fast": "default"}  # fast mode stands on the shipped default model (issue 14)
    description = "tiny CLIP (ViT + text transformer) trained contrastively on the shapes images (notebook 10)"

    def preset(self, rt) -> ClipPreset:
        return rt.preset(PRESETS)

    def config(self, rt) -> dict:
        return {"model": "CLIPModel", **asdict(self.preset(rt))}

    def data_hash(self, rt) -> str:
        return shapes_data.data_hash(rt.mode)

    def exclude_ids(self, exclude, rt) -> list[str]:
        """Image ids named by ``exclude``: a ShapesSubset, an ImageSplit (its forget set), ids or indices."""
        from .classifier import ShapeJudgeRecipe

        if isinstance(exclude, shapes_data.ShapesSubset):
            exclude = list(exclude.ids)
        return ShapeJudgeRecipe().exclude_ids(exclude, rt)

    def train(self, rt, exclude_ids, callbacks=()):
        data = shapes_data.load(rt)
        drop = {data.ids.index(i) for i in exclude_ids} if exclude_ids else set()
        keep = [i for i in data.train.tolist() if i not in drop]
        clip = train_shapes_clip(data, self.preset(rt), keep, seed=rt.seed, device=rt.device, callbacks=callbacks)
        hist = clip.train_result.history
        clip.zoo_info = {"zero_shot_test_accuracy": heldout_zero_shot(clip, data), "train_images": len(keep),
                         "parameters": clip.num_parameters(), "final_loss": round(float(np.mean(
                             [h["loss"] for h in hist[-20:]])), 4)}
        return clip

    def load(self, path: Path, rt):
        return ShapesCLIP.from_pretrained(path, device=rt.device)


zoo.register("shapes-clip", ShapesCLIPRecipe)
