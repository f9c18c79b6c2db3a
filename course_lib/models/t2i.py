"""The shapes text-to-image model: a tiny Stable-Diffusion-style UNet on the shapes images (notebook 09).

A ``diffusers.UNet2DConditionModel`` reads the caption through cross-attention on the hidden states of
the **frozen** text tower of the kit's CLIP (zoo ``"shapes-clip"``), as Stable Diffusion reads its CLIP
text encoder. It is trained with a ``DDPMScheduler`` noise schedule and samples with ``DDIMScheduler``
(tens of steps) and classifier-free guidance (10 % of training captions are dropped to ``""``).

It works in **pixel space**: at 16x16 (32x32 in full mode) the images are already smaller than a Stable
Diffusion latent (64x64x4), so there is no VAE; ``x_0`` is the image scaled to [-1, 1].

    t2i = cl.zoo.load("shapes-t2i", rt)
    images = t2i.generate(["a large red solid circle in the center"] * 4, seed=0)   # (4, 3, H, W) in [0, 1]
    gold = cl.zoo.load("shapes-t2i", rt, exclude=shapes.split("purple triangle").forget)

Notebook 09 erases concepts from it (``cl.unlearn(t2i, ..., method="esd")``); notebook 10 edits its text
encoder with SLUG; notebook 11 retrains it without a combination of attributes.
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

from ..data import shapes as shapes_data
from . import t2i_sampling as S
from . import zoo


@dataclass(frozen=True)
class T2IPreset:
    """Architecture, noise schedule, training and sampling of one shapes-t2i model."""

    block_out_channels: tuple = (32, 64, 64)
    # No attention at full resolution (self-attention over 256 pixels is the slow part on a CPU).
    down_block_types: tuple = ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D")
    up_block_types: tuple = ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")
    layers_per_block: int = 1
    attention_head_dim: int = 8
    norm_num_groups: int = 8
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"  # the cosine schedule: better than linear for small images
    prediction_type: str = "epsilon"  # eps beat v-prediction here (94 % vs 90 % recognised at 600 steps)
    snr_gamma: float | None = 5.0  # Min-SNR weighting: 76 % recognised at 400 steps where uniform had 55 % at 600
    num_steps: int = 600
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 50
    ema_decay: float | None = 0.995  # the sampled weights are an exponential moving average (None: the last)
    cfg_dropout: float = 0.1  # share of training captions replaced by "" (classifier-free guidance)
    # Sampling: 10 DDIM steps at guidance 2 recognised 96.5 % (n=200); 20 steps at guidance 3 only 68 %
    # (strong guidance over many steps over-saturates a small model's samples).
    sample_steps: int = 10
    guidance_scale: float = 2.0


PRESETS = {
    # fast: never trained: fast mode loads default's model (mode_aliases; the old small fast model drew blobs)
    "fast": T2IPreset(),
    # default: 2250 images; 95.5 % of samples judged as the prompted shape and colour (shape 96.5 %, colour 99 %,
    # n=200). 600 steps at 1.4 steps/s = 7 min on 1 busy CPU thread (450 s measured at load 2.5); fewer samples
    # seen do not draw shapes: 3-min runs (batch 32 x 450 steps; 280 steps at lr 3e-3) got the shape in 24-27 %
    "default": T2IPreset(),
    # full: 32x32 on a GPU, a wider UNet with attention at 16x16 too
    "full": T2IPreset(block_out_channels=(64, 128, 256), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D",
                      "CrossAttnDownBlock2D"), attention_head_dim=32, norm_num_groups=32, num_steps=8000,
                      batch_size=256, lr=5e-4, warmup_steps=500, sample_steps=20),
}


def new_unet(preset: T2IPreset, resolution: int, text_width: int):
    """An untrained ``UNet2DConditionModel`` for ``preset`` (RGB in and out, cross-attention on the text)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=resolution, in_channels=3, out_channels=3, block_out_channels=tuple(preset.block_out_channels),
        down_block_types=tuple(preset.down_block_types), up_block_types=tuple(preset.up_block_types),
        layers_per_block=preset.layers_per_block, attention_head_dim=preset.attention_head_dim,
        norm_num_groups=preset.norm_num_groups, cross_attention_dim=text_width)


def scheduler_config(preset: T2IPreset) -> dict:
    return {"num_train_timesteps": preset.num_train_timesteps, "beta_schedule": preset.beta_schedule,
            "prediction_type": preset.prediction_type, "clip_sample": True}


class ShapesT2I:
    """A text-to-image model: ``.unet`` (trained), ``.clip`` (whose text tower is the frozen text encoder),
    a noise schedule, and batched, seeded :meth:`generate`. Not an ``nn.Module``: ``.unet`` is.

    ``modality = "t2i"``: ``cl.unlearn`` dispatches the concept-erasure methods on it. Methods train
    ``.unet`` (SLUG may edit ``.text_encoder``); :meth:`clone` copies both.
    """

    modality = "t2i"

    def __init__(self, unet, clip, scheduler_config: dict, resolution: int, sample_steps: int = 20,
                 guidance_scale: float = 3.0, name: str = "shapes-t2i"):
        self.unet = unet
        self.clip = clip
        self.scheduler_config = dict(scheduler_config)
        self.scheduler = S.ddpm_scheduler(self.scheduler_config)
        self.resolution = int(resolution)
        self.sample_steps = int(sample_steps)
        self.guidance_scale = float(guidance_scale)
        self.name = name
        self.zoo_info: dict = {}

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def text_encoder(self):
        """The CLIP text tower (``clip.model.text_model``): frozen in training, edited by SLUG (notebook 10)."""
        return self.clip.model.text_model

    @property
    def tokenizer(self):
        return self.clip.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    def to(self, device) -> "ShapesT2I":
        self.unet.to(device)
        self.clip.model.to(device)
        return self

    def parameters(self):
        """The UNet's parameters (what the erasure methods train)."""
        return self.unet.parameters()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.unet.parameters())

    def clone(self) -> "ShapesT2I":
        """An independent deep copy: UNet and text encoder (the whole CLIP) included."""
        twin = ShapesT2I(copy.deepcopy(self.unet), self.clip.clone(), self.scheduler_config, self.resolution,
                         self.sample_steps, self.guidance_scale, self.name)
        twin.zoo_info = dict(self.zoo_info)
        return twin

    def save_pretrained(self, path) -> None:
        """``unet/`` and ``clip/`` with ``save_pretrained`` (safetensors), ``scheduler/`` and ``t2i.json``."""
        from diffusers import DDPMScheduler

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.unet.save_pretrained(path / "unet", safe_serialization=True)
        self.clip.save_pretrained(path / "clip")
        DDPMScheduler.from_config(self.scheduler_config).save_pretrained(path / "scheduler")
        meta = {"resolution": self.resolution, "sample_steps": self.sample_steps,
                "guidance_scale": self.guidance_scale, "name": self.name}
        (path / "t2i.json").write_text(json.dumps(meta, indent=1, sort_keys=True))

    @classmethod
    def from_pretrained(cls, path, device="cpu") -> "ShapesT2I":
        from diffusers import DDPMScheduler, UNet2DConditionModel

        from .clip import ShapesCLIP

        path = Path(path)
        meta = json.loads((path / "t2i.json").read_text())
        unet = UNet2DConditionModel.from_pretrained(path / "unet", use_safetensors=True).to(device).eval()
        clip = ShapesCLIP.from_pretrained(path / "clip", device=device)
        sched = dict(DDPMScheduler.load_config(path / "scheduler"))
        return cls(unet, clip, sched, **meta)

    def __repr__(self) -> str:
        return (f"ShapesT2I({self.name}, UNet {self.num_parameters() / 1e6:.2f}M parameters, "
                f"{self.resolution}x{self.resolution} pixels, device={self.device})")

    # -- text and noise predictions -----------------------------------------------------------------
    def encode_prompts(self, prompts: Sequence[str], grad: bool = False) -> torch.Tensor:
        """The text encoder's hidden states ``(N, L, D)`` for ``prompts`` (``""``: the unconditional prompt).

        ``grad=True`` keeps the graph (SLUG differentiates through the text encoder)."""
        if isinstance(prompts, str):
            raise TypeError("prompts must be a list of strings, e.g. ['a red circle'], not one string")
        return encode_text(self.clip, prompts, grad=grad).to(self.device)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, unet=None) -> torch.Tensor:
        """The noise prediction ``eps_theta(x_t, t, c)`` (converted from v if the UNet predicts v)."""
        out = (unet or self.unet)(x_t, t, encoder_hidden_states=embeds).sample
        return S.eps_from_output(self.scheduler, out, x_t, t)

    def initial_noise(self, n: int, seed: int = 0) -> torch.Tensor:
        """The starting noise of :meth:`generate`: image i's noise depends only on ``seed`` and i."""
        g = torch.Generator().manual_seed(int(seed))
        return torch.randn((n, 3, self.resolution, self.resolution), generator=g)

    # -- sampling --------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, prompts: Sequence[str] | None = None, num_inference_steps: int | None = None,
                 guidance_scale: float | None = None, seed: int = 0, prompt_embeds: torch.Tensor | None = None,
                 batch_size: int = 256, progress: bool = False) -> torch.Tensor:
        """Images ``(N, 3, H, W)`` in [0, 1] for ``prompts`` (or precomputed ``prompt_embeds``, N x L x D).

        DDIM with ``num_inference_steps`` (default: the preset's) and classifier-free guidance
        ``guidance_scale`` (default: the preset's; 1 = no guidance). Deterministic given ``seed``; the
        result does not depend on ``batch_size``. Returned on the CPU.
        """
        from tqdm.auto import tqdm
        import os

        if prompt_embeds is None:
            if prompts is None or isinstance(prompts, str):
                raise TypeError("generate needs prompts (a list of strings) or prompt_embeds (N, L, D)")
            prompts = list(prompts)
            n = len(prompts)
        else:
            n = len(prompt_embeds)
        if n == 0:
            return torch.zeros((0, 3, self.resolution, self.resolution))
        steps = self.sample_steps if num_inference_steps is None else num_inference_steps
        scale = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        sched = S.ddim_scheduler(self.scheduler_config, steps)
        was_training = self.unet.training
        self.unet.eval()
        uncond = self.encode_prompts([""])
        noise = self.initial_noise(n, seed)
        out = []
        show = progress and os.environ.get("KIT_PROGRESS") != "0"
        for s in tqdm(range(0, n, batch_size), desc="generate", disable=not show, leave=False):
            cond = (self.encode_prompts(prompts[s:s + batch_size]) if prompt_embeds is None
                    else prompt_embeds[s:s + batch_size].to(self.device))
            x, _ = S.ddim_sample(self.eps, noise[s:s + batch_size].to(self.device), cond, uncond, sched, scale)
            out.append(((x.float().clamp(-1, 1) + 1) / 2).cpu())
        self.unet.train(was_training)
        return torch.cat(out)


# -- training -------------------------------------------------------------------------------------

class CaptionBatches:
    """Collate image indices into ``{"x0": images in [-1, 1], "embeds": text hidden states}``; each
    caption is replaced by ``""`` with probability ``cfg_dropout`` (seeded), for classifier-free guidance."""

    def __init__(self, images: torch.Tensor, caption_ids: torch.Tensor, embeds: torch.Tensor, uncond_id: int,
                 cfg_dropout: float = 0.1, seed: int = 0):
        self.images, self.caption_ids, self.embeds = images, caption_ids, embeds
        self.uncond_id, self.cfg_dropout = uncond_id, cfg_dropout
        self.gen = torch.Generator().manual_seed(seed + 104729)

    def __call__(self, indices: list[int]) -> dict:
        i = torch.as_tensor(indices)
        ids = self.caption_ids[i].clone()
        ids[torch.rand(len(i), generator=self.gen) < self.cfg_dropout] = self.uncond_id
        return {"x0": self.images[i] * 2 - 1, "embeds": self.embeds[ids]}


def encode_text(clip, prompts: Sequence[str], grad: bool = False) -> torch.Tensor:
    """Hidden states ``(N, L, D)`` of ``clip.model.text_model`` for ``prompts``, padded to the tokenizer's
    ``model_max_length`` L. As in Stable Diffusion, the UNet attends to all L positions (padding included:
    CLIP's causal attention makes them summaries of the prompt), so every prompt has the same length."""
    tok = clip.tokenizer
    enc = tok(list(prompts), padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt", return_token_type_ids=False)
    dev = next(clip.model.parameters()).device
    with torch.set_grad_enabled(grad):
        return clip.model.text_model(input_ids=enc["input_ids"].to(dev),
                                     attention_mask=enc["attention_mask"].to(dev)).last_hidden_state


def caption_table(clip, captions: Sequence[str], device="cpu") -> tuple[torch.Tensor, torch.Tensor, int]:
    """Encode each distinct caption once with the frozen text encoder: ``(embeds, caption_ids, uncond_id)``
    where ``embeds[caption_ids[i]]`` belongs to ``captions[i]`` and ``embeds[uncond_id]`` to ``""``."""
    distinct = sorted(set(captions)) + [""]
    index = {c: k for k, c in enumerate(distinct)}
    with torch.no_grad():
        embeds = torch.cat([encode_text(clip, distinct[s:s + 512]) for s in range(0, len(distinct), 512)])
    return embeds.float().cpu(), torch.tensor([index[c] for c in captions]), index[""]


def train_t2i(clip, images: torch.Tensor, captions: Sequence[str], preset: T2IPreset, *, seed: int = 0,
              device="cpu", callbacks=(), progress: bool = True, desc: str = "shapes-t2i") -> ShapesT2I:
    """Train a fresh UNet on ``images`` (N, 3, H, W in [0, 1]) and ``captions`` with the kit's loop;
    ``clip``'s text tower stays frozen. Seeded: same arguments, same weights."""
    from ..runtime import seed_everything
    from ..train import TrainConfig, fit

    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    seed_everything(seed)
    clip.model.requires_grad_(False)
    width = clip.model.text_model.config.hidden_size
    unet = new_unet(preset, images.shape[-1], width).to(device)
    embeds, caption_ids, uncond = caption_table(clip, captions)
    sched_cfg = scheduler_config(preset)
    model = ShapesT2I(unet, clip, sched_cfg, images.shape[-1], preset.sample_steps, preset.guidance_scale)
    collate = CaptionBatches(images, caption_ids, embeds, uncond, preset.cfg_dropout, seed)
    cfg = TrainConfig(num_steps=preset.num_steps, batch_size=preset.batch_size, lr=preset.lr,
                      warmup_steps=preset.warmup_steps, seed=seed, desc=desc, progress=progress)
    ema = S.EMA(unet, preset.ema_decay) if preset.ema_decay else None
    model.train_result = fit(unet, list(range(len(images))), S.DenoisingLoss(model.scheduler, seed, preset.snr_gamma),
                             cfg, collate_fn=collate, callbacks=([ema] if ema else []) + list(callbacks), device=device)
    if ema is not None:
        ema.copy_to(unet)
    model.to(device)
    return model


# -- zoo recipe ------------------------------------------------------------------------------------

class ShapesT2IRecipe(zoo.Recipe):
    """Zoo recipe "shapes-t2i": the UNet trained on the shapes training images and captions, conditioned
    on the frozen text tower of ``cl.zoo.load("shapes-clip", rt)``.

    ``exclude=`` (ids, a ShapesSubset or an ImageSplit's forget set) retrains *both* without those images:
    the CLIP whose text tower conditions it (``zoo.load("shapes-clip", rt, exclude=...)``) and the UNet,
    so the retrained pipeline has never seen them anywhere (notebook 11)."""

    name = "shapes-t2i"
    mode_aliases = {"fast": "default"}  # fast mode stands on the shipped default model (issue 14)
    description = "tiny text-to-image diffusion model (UNet2DConditionModel + frozen CLIP text tower), notebook 09"

    def preset(self, rt) -> T2IPreset:
        return rt.preset(PRESETS)

    def config(self, rt) -> dict:
        return {"model": "UNet2DConditionModel", **asdict(self.preset(rt)),
                "text_encoder": {"shapes-clip": zoo.recipe("shapes-clip").config(rt)}}

    def data_hash(self, rt) -> str:
        return shapes_data.data_hash(rt.mode)

    def exclude_ids(self, exclude, rt) -> list[str]:
        return zoo.recipe("shapes-clip").exclude_ids(exclude, rt)

    def train(self, rt, exclude_ids, callbacks=()):
        clip = zoo.load("shapes-clip", rt, exclude=exclude_ids or None)
        data = shapes_data.load(rt)
        drop = {data.ids.index(i) for i in exclude_ids} if exclude_ids else set()
        keep = [i for i in data.train.tolist() if i not in drop]
        model = train_t2i(clip, data.images[torch.as_tensor(keep)], [data.captions[i] for i in keep],
                          self.preset(rt), seed=rt.seed, device=rt.device, callbacks=callbacks)
        hist = model.train_result.history
        model.zoo_info = {"train_images": len(keep), "parameters": model.num_parameters(),
                          "unet_train_seconds": round(model.train_result.seconds, 2),
                          "final_loss": round(sum(h["loss"] for h in hist[-50:]) / len(hist[-50:]), 5),
                          "loss_curve": S.loss_curve(hist)}
        return model

    def load(self, path: Path, rt):
        return ShapesT2I.from_pretrained(path, device=rt.device)


zoo.register("shapes-t2i", ShapesT2IRecipe)
