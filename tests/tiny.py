"""Tiny configurations shared by the unit tests (seconds, not minutes)."""
from __future__ import annotations

from course_lib.models.people_lm import LMPreset

TINY_LM = LMPreset(n_embd=32, n_layer=1, n_head=2, num_steps=40, batch_size=32, lr=1e-2, warmup_steps=5,
                   vocab_size=400, n_positions=96)


def use_tiny_lm(monkeypatch):
    """Make the zoo's people-lm recipe train the tiny preset in fast mode."""
    from course_lib.models import people_lm

    monkeypatch.setitem(people_lm.PRESETS, "fast", TINY_LM)
