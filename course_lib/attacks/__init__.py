"""Attacks that test whether forgotten knowledge is really gone (notebooks 08, 09, 11, 12).

Submodules, imported on first use (``cl.attacks.text``, ``cl.attacks.embedding``); the text attacks are also
reachable by name (``cl.attacks.relearn``, ``cl.attacks.quantize``, ``cl.attacks.attack_table``):

- ``text`` (notebook 08): every text attack and ``attack_table(models, split)``, which runs them on many
  models against the retrained gold model as the control. The attacks live in ``relearning`` (Hu et al.
  2024), ``quantization`` (Zhang et al. 2024), ``prompting`` (paraphrases; facts re-introduced in context,
  Cooper et al. 2024) and ``probing`` (a linear probe and the logit lens); each returns a ``result.AttackResult``.
- ``decomposition`` (notebook 12): harmless pieces that pass an output filter, assembled into the secret.
- ``embedding`` (notebook 09): an optimised prompt embedding brings an erased image concept back.
"""
from __future__ import annotations

import importlib as _importlib


def __getattr__(name: str):
    """A submodule (``cl.attacks.embedding``), or a text attack by its name (``cl.attacks.relearn``,
    ``cl.attacks.quantize``, ``cl.attacks.attack_table``: the names of ``text``)."""
    try:
        return _importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
    text = _importlib.import_module(f"{__name__}.text")
    if not name.startswith("_") and hasattr(text, name):
        return getattr(text, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
