"""White-box attacks that read the hidden states (notebook 08): a linear probe and the logit lens.

Both look at the residual stream at the last prompt token (the ``:`` of ``"Answer:"``), where the model
must already hold the answer it is about to say, after each block ``l = 0..L`` (``l = 0``: the
embeddings). An attacker with the weights needs no output at all: an output filter, a refusal behaviour
or a last-layer scramble hides the answer from the *output* but not necessarily from the layers below.

- **Linear probe** (Alain & Bengio 2016; used on unlearned LLMs by Lynch et al. 2024, "Eight Methods to
  Evaluate Robust Unlearning in LLMs", and Patil et al. 2024, "Can Sensitive Information Be Deleted
  From LLMs?"): per attribute, a logistic regression (scikit-learn) from the layer's hidden state to the
  answer, trained on the *retain* people, tested on the *forget* people. It can only succeed on people
  whose answer the model still represents; on people never trained on (``split.holdout``, a control
  inside every model) it is at chance.
- **Logit lens** (nostalgebraist 2020, "interpreting GPT: the logit lens"): decode each layer's hidden
  state through the final LayerNorm and the output head, ``logits_l = W_U LN_f(h_l)``, and ask whether
  the answer's first token is the top-1 token. HF models return the last hidden state *after* the final
  norm, so the last layer is decoded by the head alone: it equals the model's own logits.

The forget facts' greedy answer accuracy is ``before``; the best layer's probe or lens accuracy is ``after``
(the control model, the retrained gold model, gets the same best-layer choice).
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from ..data.people_world import POOLS
from ..models.lm import PROMPT
from .result import AttackResult, accuracy, need_items

# Categorical attributes with a small pool (8-14 values): birth_year (50 values) has too few examples per
# class for a probe trained on tens of people, and a phone number has no pool.
PROBE_ATTRIBUTES = ("birth_city", "occupation", "employer", "pet", "favourite_colour", "hobby", "university")


def _module(model) -> torch.nn.Module:
    """The ``nn.Module`` under a TextModel, a suppression wrapper (its weights) or a peft model."""
    net = getattr(model, "model", model)
    return net.get_base_model() if hasattr(net, "get_base_model") else net


def final_norm(net) -> torch.nn.Module:
    """The final LayerNorm / RMSNorm before the output head (GPT-2 ``ln_f``, Llama ``norm``, NeoX)."""
    from ..models.lm import submodule

    norm = submodule(net, ("transformer.ln_f", "model.norm", "gpt_neox.final_layer_norm"))
    if norm is not None:
        return norm
    raise TypeError(f"cannot find the final norm of a {type(net).__name__}; the logit lens knows GPT-2 "
                    "(transformer.ln_f), Llama-style (model.norm) and GPT-NeoX models")


@torch.no_grad()
def prompt_states(model, questions, batch_size: int = 256) -> torch.Tensor:
    """(layers + 1, questions, d): the hidden state after each block at the last token of each prompt
    ``"Question: q\\nAnswer:"`` (index 0: the embeddings; the last: after the final norm, as HF returns it).
    Read off the weights: a suppression wrapper's context and filter play no part (white-box)."""
    net, tok = _module(model).eval(), model.tokenizer
    device = next(net.parameters()).device
    out = []
    for s in range(0, len(questions), batch_size):
        ids = tok([PROMPT.format(q=q) for q in questions[s:s + batch_size]], add_special_tokens=False)["input_ids"]
        width = max(map(len, ids))
        x = torch.full((len(ids), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(x)
        for i, row in enumerate(ids):  # right-padded: positions 0.. as in training; the causal mask hides pads
            x[i, :len(row)], mask[i, :len(row)] = torch.tensor(row), 1
        hs = net(input_ids=x.to(device), attention_mask=mask.to(device), output_hidden_states=True).hidden_states
        last = (mask.sum(1) - 1).to(device)
        out.append(torch.stack([h[torch.arange(len(ids), device=device), last] for h in hs]).float().cpu())
    return torch.cat(out, dim=1)


@torch.no_grad()
def lens_logits(model, states: torch.Tensor) -> torch.Tensor:
    """Logit lens: (layers + 1, n, vocab) logits ``W_U LN_f(h_l)`` for :func:`prompt_states`' output; the
    last layer (already normed by the model) goes through the head alone."""
    net = _module(model)
    device = next(net.parameters()).device
    norm, head = final_norm(net), net.get_output_embeddings()
    layers = [head((h if i == len(states) - 1 else norm(h)).to(device)).float().cpu()
              for i, h in enumerate(states.to(device))]
    return torch.stack(layers)


def _first_tokens(model, answers) -> np.ndarray:
    return np.array([model.tokenizer(" " + a, add_special_tokens=False)["input_ids"][0] for a in answers])


def _facts(split, forget, attributes):
    forget = split.forget if forget is None else forget
    need_items(forget, "forget", "pass split.forget")
    attributes = PROBE_ATTRIBUTES if attributes is None else tuple(attributes)
    unknown = [a for a in attributes if a not in PROBE_ATTRIBUTES]
    if unknown or not attributes:
        raise ValueError(f"attributes={unknown or list(attributes)!r}; allowed values: {', '.join(PROBE_ATTRIBUTES)}")
    chosen = forget.filter(attribute=attributes)
    need_items(chosen, "forget", f"it has no questions about {', '.join(attributes)}")
    return chosen, attributes


def logit_lens(model, split, *, forget=None, attributes=None) -> AttackResult:
    """Logit lens, notebook 08: per layer, the fraction of forget questions whose answer's first token
    is the top-1 token of the decoded hidden state (and its mean log-probability). ``before``: greedy
    answer accuracy on the same questions; ``after``: the best layer. ``details``: one row per layer,
    with the same numbers on as many retain questions for comparison."""
    start = time.perf_counter()
    chosen, attributes = _facts(split, forget, attributes)
    retain = split.retain.filter(attribute=attributes).sample(len(chosen), seed=0)
    rows = []
    for name, qs in (("forget", chosen), ("retain", retain)):
        if not len(qs):
            continue
        logits = lens_logits(model, prompt_states(model, qs.questions))
        target = torch.as_tensor(_first_tokens(model, qs.answers))
        logp = torch.log_softmax(logits, -1)
        for layer in range(len(logits)):
            rows.append({"set": name, "layer": layer,
                         "top1": float((logits[layer].argmax(-1) == target).float().mean()),
                         "logprob": float(logp[layer].gather(-1, target[:, None]).mean())})
    details = pd.DataFrame(rows)
    per_layer = details[details["set"] == "forget"]
    return AttackResult("logit_lens", "forget answers' first token top-1 at the best layer (logit lens)",
                        before=accuracy(model, chosen), after=float(per_layer["top1"].max()), n=len(chosen),
                        seconds=time.perf_counter() - start, details=details,
                        extras={"best_layer": int(per_layer.loc[per_layer["top1"].idxmax(), "layer"])})


def probe(model, split, *, forget=None, attributes=None, C: float = 0.1, seed: int = 0) -> AttackResult:
    """Linear probe, notebook 08: per attribute and layer, a standardised logistic regression (``C``,
    scikit-learn) trained on the retain people's prompts (both training templates) predicts the answer
    from the hidden state; accuracy on the forget people (the attack) and on the holdout people (a
    control: never trained on, so chance). ``before``: greedy answer accuracy on the probed forget
    questions; ``after``: the best layer's probe accuracy. ``details``: one row per layer and set;
    ``extras["chance"]``: 1 / pool size, averaged over the probed questions."""
    from threadpoolctl import threadpool_limits

    start = time.perf_counter()
    chosen, attributes = _facts(split, forget, attributes)
    sets = {"train": split.retain.filter(attribute=attributes, kind="train"), "forget": chosen,
            "holdout": split.holdout.filter(attribute=attributes)}
    need_items(sets["train"], "split.retain", "the probe is trained on the retain people")
    states = {k: prompt_states(model, v.questions) for k, v in sets.items() if len(v)}
    # BLAS threads only wait for each other on fits this small: as many as torch has (KIT_THREADS).
    with threadpool_limits(limits=torch.get_num_threads()):
        hits = _fit_probes(sets, states, attributes, C, seed)
    details = pd.DataFrame([{"set": k, "layer": layer, "probe_acc": float(h[layer].mean())}
                            for k, h in hits.items() for layer in range(len(h))])
    forget_rows = details[details["set"] == "forget"]
    chance = float(np.mean([1 / len(POOLS[q.attribute]) for q in chosen]))
    return AttackResult("probe", "forget answers read off the hidden states by a linear probe (best layer)",
                        before=accuracy(model, chosen), after=float(forget_rows["probe_acc"].max()), n=len(chosen),
                        seconds=time.perf_counter() - start, details=details,
                        extras={"chance": chance, "attributes": attributes,
                                "best_layer": int(forget_rows.loc[forget_rows["probe_acc"].idxmax(), "layer"])})


def _fit_probes(sets, states, attributes, C, seed) -> dict:
    """set name -> (layers, questions) booleans: did the attribute's probe at that layer get it right?"""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n_layers = len(states["train"])
    hits = {k: np.zeros((n_layers, len(sets[k])), dtype=bool) for k in states if k != "train"}
    for attr in attributes:
        rows = {k: np.array([q.attribute == attr for q in sets[k]]) for k in states}
        y = np.array(sets["train"].answers)[rows["train"]]
        if len(set(y)) < 2:
            raise ValueError(f"the retain people have fewer than two values of {attr!r}: nothing to train a probe on")
        for layer in range(n_layers):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
            clf.fit(states["train"][layer][rows["train"]].numpy(), y)
            for k in hits:
                if rows[k].any():
                    pred = clf.predict(states[k][layer][rows[k]].numpy())
                    hits[k][layer, rows[k]] = pred == np.array(sets[k].answers)[rows[k]]
    return hits
