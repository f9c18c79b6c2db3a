"""What every model wrapper of the kit shares (``TextModel`` in notebook 02, ``ShapesCLIP`` in notebook 10):
an ``nn.Module`` from transformers and its tokenizer, cloned deeply and saved with ``save_pretrained``.

A wrapper is not an ``nn.Module``: ``.model`` is. Unlearning methods train or edit ``.model``;
:meth:`clone` gives an independent copy, so that the base model is never modified in place.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch


class ModelWithTokenizer:
    """``model`` + ``tokenizer`` + ``name``; subclasses set ``auto_class`` (the transformers class that
    ``from_pretrained`` loads) and ``default_name``."""

    auto_class = "AutoModel"
    default_name = "model"

    def __init__(self, model, tokenizer, name: str | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or self.default_name
        self.zoo_info: dict = {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device):
        self.model.to(device)
        return self

    def parameters(self):
        return self.model.parameters()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def clone(self):
        """An independent deep copy (weights included); the tokenizer is shared (it is immutable)."""
        twin = type(self)(copy.deepcopy(self.model), self.tokenizer, self.name)
        twin.zoo_info = dict(self.zoo_info)
        return twin

    def save_pretrained(self, path) -> None:
        """Write the model (safetensors) and the tokenizer with ``save_pretrained``."""
        path = Path(path)
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)

    @classmethod
    def from_pretrained(cls, path, device="cpu", name: str | None = None):
        import transformers
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast.from_pretrained(path)
        model = getattr(transformers, cls.auto_class).from_pretrained(path, use_safetensors=True).to(device).eval()
        return cls(model, tok, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}, {self.num_parameters() / 1e6:.2f}M parameters, device={self.device})"
