"""The tiny CLIP: a `transformers.CLIPModel` trained contrastively on the shapes images (notebook 10).

Zoo recipe ``"shapes-clip"``; SLUG (notebook 10) unlearns on it, and its text tower is the text
encoder of the text-to-image model (notebook 09, ``models/t2i.py``).

Public API of the wrapper :class:`ShapesCLIP` (``clip = cl.zoo.load("shapes-clip", rt)``)::

    clip.model                      # the transformers.CLIPModel (train / edit this)
    clip.tokenizer                  # a PreTrainedTokenizerFast (word level, [BOS] ... [EOS], [PAD]=0)
    clip.modality == "clip"         # class attribute: cl.unlearn dispatches on it
    clip.device; clip.clone(); clip.save_pretrained(path); ShapesCLIP.from_pretrained(path, device=)
    clip.tokenize(prompts) -> {"input_ids", "attention_mask"}   # LongTensors on clip.device
    clip.encode_text(prompts) -> (N, D) unit-norm text embeddings       (no grad)
    clip.encode_images(images) -> (N, D) unit-norm image embeddings     (images (N, 3, H, W) in [0, 1])
    clip.text_hidden_states(prompts) -> (last_hidden_state (N, T, H), attention_mask (N, T))
        # from clip.model.text_model: a Stable-Diffusion-style conditioning sequence (with grad if enabled)
    clip.text_hidden_size           # H above (the width of the text tower)
    clip.class_prompts(attribute, template=None) -> {class value: [prompts]}
    clip.class_scores(images, attribute, template=None) -> (N, classes) cosine scores
    clip.zero_shot(images, attribute="shape", template=None) -> LongTensor of class indices
    clip.zero_shot_accuracy(subset_or_images, labels=None, attribute="shape") -> float
    clip.predict_attributes(images) -> {attribute: class indices}; clip.attribute_accuracies(subset) -> {attribute: acc}
    clip.pairs_loss(images, captions) -> the CLIP contrastive loss (a differentiable tensor)

Zero-shot classification scores an image against one text embedding per class value of an attribute
(``shapes.CLASSES``). ``template=None`` ensembles prompts (Radford et al. 2021, sec. 3.1.4): every caption
that shows the class value, written as the training captions are ("a small red striped circle on the
left"); a class scores its best-fitting caption (max over its prompts: a tiny CLIP's embeddings are not
additive enough for the mean of 108 captions to work). A string template ("a {} shape") uses one prompt.

Images enter the vision tower as ``(images - 0.5) / 0.5``. The tokenizer is a `tokenizers` WordLevel
model trained on the captions and the template words, wrapped as ``PreTrainedTokenizerFast``.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Sequence

import torch

from ..data import shapes as shapes_data
from .wrapper import ModelWithTokenizer

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
# Words of hand-written prompts ("a photo of a circle", "a red shape") besides the caption words.
EXTRA_WORDS = ("photo", "of", "shape", "image", "picture", "drawing", "an", "with", "and", "in", "the")


@dataclass(frozen=True)
class ClipPreset:
    width: int          # hidden size of both towers
    layers: int         # transformer blocks per tower
    heads: int
    patch_size: int
    projection_dim: int
    num_steps: int
    batch_size: int
    lr: float
    warmup_steps: int = 50
    max_length: int = 16  # the longest caption is 8 words + [BOS] + [EOS]
    hard_negatives: bool = True  # each image brings a partner differing in one attribute (batch doubles)


PRESETS = {
    # Batches hold batch_size sampled images plus one hard-negative partner each (2 x batch_size pairs).
    # default: 2250 training images 16x16; a laptop CPU. ~50 s on 2 quiet cores (116 s measured at load 4.5);
    # zero-shot test accuracy shape 0.96, colour/texture/size/position 1.00
    "default": ClipPreset(width=64, layers=2, heads=4, patch_size=4, projection_dim=64, num_steps=900,
                          batch_size=64, lr=2e-3),
    # full: 3600 training images 32x32 on a GPU (8x8 patches of 4 px); not yet timed
    "full": ClipPreset(width=256, layers=6, heads=8, patch_size=4, projection_dim=128, num_steps=4000,
                       batch_size=128, lr=1e-3, warmup_steps=200),
}
PRESETS["fast"] = PRESETS["default"]  # never trained: fast mode loads the default model (ShapesCLIPRecipe.mode_aliases)


def vocabulary_texts() -> list[str]:
    """Every caption of the 540 attribute combinations, plus the words of hand-written prompts."""
    combos = itertools.product(*shapes_data.CLASSES.values())
    return [shapes_data.caption(*c) for c in combos] + [" ".join(EXTRA_WORDS)]


def build_tokenizer(texts: Sequence[str] | None = None, max_length: int = 16):
    """A WordLevel tokenizer on ``texts`` (default :func:`vocabulary_texts`): ``[BOS] words [EOS]``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordLevelTrainer(special_tokens=[PAD, UNK, BOS, EOS], show_progress=False)
    tok.train_from_iterator(list(texts or vocabulary_texts()), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, tok.token_to_id(BOS)), (EOS, tok.token_to_id(EOS))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK, bos_token=BOS,
                                   eos_token=EOS, model_max_length=max_length)


def new_clip_model(tokenizer, preset: ClipPreset, resolution: int):
    """An untrained ``CLIPModel`` for ``preset`` and images of ``resolution`` pixels."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    common = dict(hidden_size=preset.width, intermediate_size=4 * preset.width, num_hidden_layers=preset.layers,
                  num_attention_heads=preset.heads, projection_dim=preset.projection_dim,
                  attention_dropout=0.0, hidden_act="gelu")
    text = CLIPTextConfig(vocab_size=len(tokenizer), max_position_embeddings=preset.max_length,
                          pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, **common)
    vision = CLIPVisionConfig(image_size=resolution, patch_size=preset.patch_size, num_channels=3, **common)
    cfg = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(),
                     projection_dim=preset.projection_dim)
    return CLIPModel(cfg)


@functools.lru_cache(maxsize=1)
def all_captions() -> tuple[list[str], torch.Tensor]:
    """The captions of all 540 attribute combinations and their (540, 5) table of class indices."""
    combos = list(itertools.product(*shapes_data.CLASSES.values()))
    table = torch.tensor([[shapes_data.CLASSES[a].index(v) for a, v in zip(shapes_data.ATTRIBUTES, c)] for c in combos])
    return [shapes_data.caption(*c) for c in combos], table


def pixel_values(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> the vision tower's input in [-1, 1]."""
    return (images - 0.5) / 0.5


class ShapesCLIP(ModelWithTokenizer):
    """A ``CLIPModel`` and its tokenizer with embedding and zero-shot helpers. Not an ``nn.Module``:
    ``.model`` is. Unlearning methods edit ``.model``; :meth:`clone` gives an independent copy."""

    modality = "clip"

    auto_class = "CLIPModel"
    default_name = "shapes-clip"

    @property
    def text_hidden_size(self) -> int:
        return self.model.config.text_config.hidden_size

    def tokenize(self, prompts: Sequence[str]) -> dict:
        if isinstance(prompts, str):
            raise TypeError("prompts must be a list of strings, not one string")
        enc = self.tokenizer(list(prompts), padding=True, truncation=True, return_tensors="pt",
                             return_token_type_ids=False)
        return {k: v.to(self.device) for k, v in enc.items()}

    def text_embeds(self, prompts: Sequence[str]) -> torch.Tensor:
        """Unit-norm text embeddings, differentiable (SLUG's gradients go through here)."""
        out = self.model.get_text_features(**self.tokenize(prompts)).pooler_output
        return out / out.norm(dim=-1, keepdim=True)

    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-norm image embeddings, differentiable."""
        out = self.model.get_image_features(pixel_values=pixel_values(images.to(self.device))).pooler_output
        return out / out.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def encode_text(self, prompts: Sequence[str], batch_size: int = 1024) -> torch.Tensor:
        self.model.eval()
        prompts = list(prompts)
        return torch.cat([self.text_embeds(prompts[i:i + batch_size]) for i in range(0, len(prompts), batch_size)])

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        self.model.eval()
        if images.dim() == 3:
            images = images[None]
        return torch.cat([self.image_embeds(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])

    def text_hidden_states(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(last_hidden_state (N, T, H), attention_mask (N, T)) of ``model.text_model``: the conditioning
        sequence of a text-to-image model (as Stable Diffusion uses CLIP's text encoder)."""
        enc = self.tokenize(prompts)
        out = self.model.text_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        return out.last_hidden_state, enc["attention_mask"]

    def pairs_loss(self, images: torch.Tensor, captions: Sequence[str]) -> torch.Tensor:
        """The CLIP contrastive loss (symmetric cross-entropy over the batch's image-caption pairs)."""
        enc = self.tokenize(captions)
        return self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                          pixel_values=pixel_values(images.to(self.device)), return_loss=True).loss

    # -- zero-shot classification ------------------------------------------------------------------
    @staticmethod
    def class_prompts(attribute: str, template: str | None = None) -> dict[str, list[str]]:
        """Prompts per class value of ``attribute``: every caption showing it (``template=None``), or
        ``template.format(value)``."""
        if attribute not in shapes_data.CLASSES:
            raise ValueError(f"attribute={attribute!r}; allowed values: {', '.join(shapes_data.CLASSES)}")
        if template is not None:
            if "{}" not in template:
                raise ValueError(f"template={template!r} must contain '{{}}' where the class value goes")
            return {v: [template.format(v)] for v in shapes_data.CLASSES[attribute]}
        pos = shapes_data.ATTRIBUTES.index(attribute)
        captions, table = all_captions()
        return {v: [c for c, row in zip(captions, table[:, pos].tolist()) if row == k]
                for k, v in enumerate(shapes_data.CLASSES[attribute])}

    def class_scores(self, images: torch.Tensor, attribute: str = "shape", template: str | None = None) -> torch.Tensor:
        """(N, classes): each class's best cosine similarity over its prompts (max-pooled prompt ensemble:
        the class of the caption that fits the image best)."""
        prompts = self.class_prompts(attribute, template)
        flat = [p for ps in prompts.values() for p in ps]
        sims = self.encode_images(images) @ self.encode_text(flat).T
        return torch.stack([chunk.max(1).values for chunk in sims.split([len(ps) for ps in prompts.values()], 1)], 1)

    @torch.no_grad()
    def zero_shot(self, images: torch.Tensor, attribute: str = "shape", template: str | None = None) -> torch.Tensor:
        """The predicted class index (into ``shapes.CLASSES[attribute]``) of each image."""
        return self.class_scores(images, attribute, template).argmax(-1).cpu()

    @torch.no_grad()
    def predict_attributes(self, images: torch.Tensor | None = None, *, image_embeds: torch.Tensor | None = None,
                           caption_embeds: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Zero-shot prediction of every attribute at once: the attributes of the best-fitting caption among
        all 540 (what :meth:`zero_shot` with ``template=None`` predicts, in one text pass). Embeddings
        already computed (``encode_images(images)``, ``encode_text(all_captions()[0])``) may be passed."""
        captions, table = all_captions()
        img = self.encode_images(images) if image_embeds is None else image_embeds
        txt = self.encode_text(captions) if caption_embeds is None else caption_embeds
        best = (img @ txt.T).argmax(-1).cpu()
        return {a: table[best, j] for j, a in enumerate(shapes_data.ATTRIBUTES)}

    def attribute_accuracies(self, subset) -> dict[str, float]:
        """Zero-shot accuracy per attribute on a ShapesSubset (one pass: :meth:`predict_attributes`)."""
        if len(subset) == 0:
            return {a: float("nan") for a in shapes_data.ATTRIBUTES}
        pred = self.predict_attributes(subset.images)
        return {a: float((pred[a] == subset.labels[a].cpu()).float().mean()) for a in shapes_data.ATTRIBUTES}

    def zero_shot_accuracy(self, subset_or_images, labels=None, attribute: str = "shape",
                           template: str | None = None) -> float:
        """Zero-shot accuracy for ``attribute`` on a ShapesSubset (its labels) or on images + labels."""
        images = getattr(subset_or_images, "images", subset_or_images)
        if labels is None and not hasattr(subset_or_images, "labels"):
            raise ValueError("labels is required when images are passed as a tensor")
        labels = subset_or_images.labels if labels is None else labels
        labels = labels[attribute] if isinstance(labels, dict) else labels
        if len(images) == 0:
            return float("nan")
        return float((self.zero_shot(images, attribute, template) == torch.as_tensor(labels).cpu()).float().mean())


# The training code and the zoo recipe live in clip_train.py; importing it registers "shapes-clip".
from .clip_train import ShapesCLIPRecipe, clip_loss, heldout_zero_shot, train_shapes_clip  # noqa: E402,F401
