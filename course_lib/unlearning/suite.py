"""The unlearned models that notebooks 08 and 13 attack and score: one place for their settings, per mode.

GA, GradDiff and NPO with notebook 03's budget (the same steps and learning rate, retain weight 10, NPO's beta
0.5), RMU, LoRA and the output filter with notebook 06's settings. ``cheap`` adds the two methods that change
no weight and need no training (a refusal prompt and in-context unlearning), as notebook 13 does.

    METHODS = suite.methods()              # {"fast": {"ga": {...}, ...}, "default": {...}, "full": {...}}
    rt.preset(METHODS)                     # the methods and hyper-parameters of this run mode
"""
from __future__ import annotations

import copy

NO_TRAINING = {"refusal_prompt": {}, "in_context": {}}
"""Suppression methods without training (notebook 06): seconds, so notebook 13 adds them."""

# The relearning attack of notebook 08, the same for every model: Adam at lr 1e-3 on half the forget facts.
ATTACK_SETTINGS = {
    "fast":    {"relearn": {"num_steps": 30, "lr": 1e-3, "eval_every": 5}},
    "default": {"relearn": {"num_steps": 30, "lr": 1e-3, "eval_every": 5}},
    "full":    {"relearn": {"num_steps": 30, "lr": 1e-4, "eval_every": 5}},
}


def notebook03(num_steps: int, lr: float) -> dict:
    """GA, GradDiff and NPO on notebook 03's budget: the same steps and lr; retain weight 10; NPO's beta 0.5."""
    rw = {"num_steps": num_steps, "lr": lr, "retain_weight": 10.0}
    return {"ga": {"num_steps": num_steps, "lr": lr}, "grad_diff": rw, "npo": {**rw, "beta": 0.5}}


_SUITE = {
    # Fast mode stands on default's model (issue 14): the same methods and settings; its notebooks cut evaluation
    "fast":    {**notebook03(200, 2e-3), "rmu": {}, "lora": {}, "filter": {}},
    "default": {**notebook03(200, 2e-3), "rmu": {}, "lora": {}, "filter": {}},
    "full":    {**notebook03(300, 2e-4), "rmu": {}, "lora": {}, "filter": {}},
}


def methods(cheap: bool = False) -> dict:
    """mode -> {method: hyper-parameters} of notebook 08's unlearned models (a fresh copy each call).

    ``cheap=True`` adds :data:`NO_TRAINING` (refusal prompt, in-context unlearning) to every mode (notebook 13).
    """
    out = copy.deepcopy(_SUITE)
    if cheap:
        for mode in out:
            out[mode].update(copy.deepcopy(NO_TRAINING))
    return out


def attack_settings() -> dict:
    """mode -> the attack settings of notebook 08 (``attack_table(..., settings=rt.preset(...))``), a copy."""
    return copy.deepcopy(ATTACK_SETTINGS)
