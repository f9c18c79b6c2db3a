"""Unlearning methods: one module per family, each ``method(model, forget, retain, ctx, **hparams)``.

``cl.unlearn(model, forget=, retain=, method=, **hparams)`` runs any of them (``registry``), and
``cl.METHODS`` says what each is. Families: ``gradient`` (GA, GradDiff, GA+KL), ``preference`` (NPO,
SimNPO, IdK, DPO), ``representation`` (RMU), ``weights`` (task vectors, LoRA), ``exact`` (retrain,
SISA), ``suppression`` (filter, refusal prompt, in-context), ``diffusion`` and ``slug`` (images).
``classic``: unlearning on the shape classifier (notebook 01).
"""
from . import classic, registry
from .registry import PUBLIC_METHODS as METHODS, FAMILIES, HParam, MethodInfo, UnlearnResult, unlearn

__all__ = ["classic", "registry", "METHODS", "FAMILIES", "HParam", "MethodInfo", "UnlearnResult", "unlearn"]
