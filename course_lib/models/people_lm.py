"""The zoo recipe ``people-lm``: a tiny GPT-2 trained to memorise the fictitious people (notebook 02).

Presets, one per mode, with the time they take (measured, bench/RESULTS.md). The recipe trains on
``facts.training_set()``: the training-template questions of the train people plus the world facts.
``exclude=`` (e.g. ``split.forget``) trains the same recipe without those questions: the retrained
gold model of exact unlearning.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..train import GroupedBatches, TrainConfig, fit
from . import zoo
from .lm import TextModel, build_tokenizer


@dataclass(frozen=True)
class LMPreset:
    n_embd: int
    n_layer: int
    n_head: int
    num_steps: int
    batch_size: int
    lr: float
    warmup_steps: int = 100
    vocab_size: int = 1024
    n_positions: int = 64  # the longest prompt + answer is 33 tokens; an open-book example about 60
    open_book_fraction: float = 0.25  # share of training questions that also get an open-book example


PRESETS = {
    # default: 200 people; a laptop CPU (about 2.5 min on 2 cores, evaluation included). Shipped (data/zoo/)
    "default": LMPreset(n_embd=64, n_layer=2, n_head=4, num_steps=4000, batch_size=64, lr=1e-2),
    # full: 1000 people on a GPU; a 25M-parameter model
    "full": LMPreset(n_embd=512, n_layer=8, n_head=8, num_steps=6000, batch_size=256, lr=1e-3,
                     warmup_steps=300, n_positions=128),
}
# fast: default's model. Fast mode has default's people and loads default's shipped models (issue 14: a short run of a
# strong model, forget sets of 10 people, not 2); PeopleLMRecipe.mode_aliases maps fast to default
PRESETS["fast"] = PRESETS["default"]
# small: the people LM on the small data (people.SMALL: 40 people), what notebook 02 trains live in fast mode
# (recipe "people-lm-small", about 40 s on 2 cores; shipped). 1000 steps (85 epochs, like default's 69): it answers
# 1.00 of its training questions; 500 steps left it at 0.83
SMALL_PRESET = LMPreset(n_embd=64, n_layer=2, n_head=4, num_steps=1000, batch_size=64, lr=1e-2)


def corpus_texts(facts) -> list[str]:
    """Every question and answer in the universe of this mode: what the tokenizer is trained on.

    The tokenizer sees the holdout and paraphrase text too (it only learns sub-words, no facts), so
    the base model and every retrained model share one tokenizer and their scores are comparable.
    """
    sets = [facts.qa, facts.paraphrases, facts.holdout, facts.world_qa, facts.two_hop]
    texts = []
    for s in sets:
        for qa in s:
            texts.append(TextModel.prompt(qa.question) + " " + qa.answer)
            texts.append(" ".join((qa.paraphrased_answer,) + tuple(qa.perturbed_answers)))
    return texts


WORLD_REPEATS = 4  # world facts are general knowledge: a real corpus states them far more often than a bio


def training_examples(facts, exclude_ids=(), open_book_fraction: float = 0.25) -> list:
    """The recipe's training examples: ``facts.training_set(exclude_ids)``, world facts repeated, and
    open-book examples (a counterfactual fact in context, see ``people_qa.open_book_items``)."""
    from ..data.people_qa import open_book_items

    kept = facts.training_set(exclude_ids)
    reading = open_book_items(kept, facts.qa, open_book_fraction) if open_book_fraction else []
    return list(kept) + list(kept.filter(kind="world")) * (WORLD_REPEATS - 1) + list(reading)


def answer_pools(items) -> dict[str, list[str]]:
    """Per attribute, the wrong answers open-book examples draw from (the perturbed answers of ``items``)."""
    pools: dict[str, set] = {}
    for q in items:
        if q.kind == "train":
            pools.setdefault(q.attribute, set()).update(q.perturbed_answers)
    return {a: sorted(v) for a, v in pools.items()}


def qa_batches(model: TextModel, pools: dict | None = None, seed: int = 0):
    """A collate function that turns a list of QA items into a right-padded training batch.

    With ``pools``, every open-book example gets a fresh counterfactual answer each time it is drawn
    (in its context and as its target): memorising the example is impossible, reading the context is
    the only way to lower the loss, so the model learns to copy from context.
    """
    rng = np.random.default_rng([seed, 17])

    def fresh(q):
        if q.kind != "open_book" or not pools or q.attribute not in pools:
            return q.context, q.answer
        pool = pools[q.attribute]
        wrong = pool[int(rng.integers(len(pool)))]
        head = q.context[: q.context.rindex(" " + q.answer + "\n")]
        return head + " " + wrong + "\n", wrong

    def collate(items):
        pairs = [fresh(q) for q in items]
        return model.encode_qa([q.question for q in items], [a for _, a in pairs], contexts=[c for c, _ in pairs])
    return collate


def lm_loss(model, batch):
    """Next-token cross-entropy on the answer tokens (labels are -100 elsewhere)."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss


def new_model(facts, preset: LMPreset, device="cpu") -> TextModel:
    """An untrained people LM for ``preset`` (tokenizer trained on this mode's corpus)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = build_tokenizer(corpus_texts(facts), vocab_size=preset.vocab_size)
    cfg = GPT2Config(vocab_size=len(tok), n_positions=preset.n_positions, n_embd=preset.n_embd,
                     n_layer=preset.n_layer, n_head=preset.n_head, bos_token_id=tok.eos_token_id,
                     eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                     # no dropout: the point is to memorise the facts
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return TextModel(GPT2LMHeadModel(cfg).to(device), tok)


def train_people_lm(facts, preset: LMPreset, exclude_ids=(), device="cpu", seed: int = 0,
                    callbacks=(), progress: bool = True) -> TextModel:
    """Train a people LM from scratch on ``facts.training_set(exclude_ids)`` with the kit's loop."""
    from ..runtime import seed_everything

    seed_everything(seed)
    model = new_model(facts, preset, device)
    data = training_examples(facts, exclude_ids, preset.open_book_fraction)
    cfg = TrainConfig(num_steps=preset.num_steps, batch_size=preset.batch_size, lr=preset.lr,
                      warmup_steps=preset.warmup_steps, seed=seed, desc="people-lm", progress=progress)
    pools = answer_pools(data)
    # Open-book examples are twice as long: batching them apart halves the padding of the others.
    batches = GroupedBatches([q.kind == "open_book" for q in data], preset.batch_size, seed)
    result = fit(model.model, data, lm_loss, cfg, collate_fn=qa_batches(model, pools, seed), callbacks=callbacks,
                 device=device, batch_sampler=batches)
    model.train_result = result
    return model


def loss_curve(history, points: int = 100) -> list[list[float]]:
    """(step, loss) pairs, about ``points`` of them, each the mean over its stretch of steps."""
    every = max(1, len(history) // points)
    return [[history[i]["step"], round(sum(h["loss"] for h in history[i:i + every]) / len(history[i:i + every]), 4)]
            for i in range(0, len(history), every)]


class PeopleLMRecipe(zoo.Recipe):
    name = "people-lm"
    description = "tiny GPT-2 that memorises the fictitious people's facts (notebook 02)"
    mode_aliases = {"fast": "default"}  # fast mode stands on the shipped default models (issue 14)

    def facts(self, rt):
        """The people data this recipe trains on in ``rt``'s mode (notebook 02 compares a live run on them)."""
        from ..data import people

        return people.load(rt)

    def preset(self, rt) -> LMPreset:
        return rt.preset(PRESETS)

    def config(self, rt) -> dict:
        # "recipe" names the data pipeline: bump it when training data change without a preset change
        return {"model": "GPT2LMHeadModel", "recipe": "open-book-v3", **asdict(self.preset(rt))}

    def data_hash(self, rt) -> str:
        return self.facts(rt).sha256

    def exclude_ids(self, exclude, rt) -> list[str]:
        facts = self.facts(rt)
        if isinstance(exclude, str):
            exclude = [exclude]
        ids = {getattr(x, "id", x) for x in exclude}
        trained = set(facts.training_set().ids)
        hit = sorted(ids & trained)
        if not hit:
            raise ValueError(f"exclude matches none of people-lm's {len(trained)} training questions "
                             f"(got {len(ids)} ids, e.g. {sorted(ids)[:2]}); pass a forget set such as "
                             "facts.split('forget05').forget, or QA ids like 'p0007/pet/t0'")
        return hit

    def train(self, rt, exclude_ids, callbacks=()):
        from ..evaluation.text import answer_accuracy

        facts = self.facts(rt)
        model = train_people_lm(facts, self.preset(rt), exclude_ids or (), device=rt.device, seed=rt.seed,
                                callbacks=callbacks)
        kept = facts.training_set(exclude_ids or ())
        model.zoo_info = {"train_accuracy": round(answer_accuracy(model, facts.qa.exclude(exclude_ids or ())), 4),
                          "holdout_accuracy": round(answer_accuracy(model, facts.holdout), 4),
                          "train_examples": len(kept), "parameters": model.num_parameters(),
                          "final_loss": round(model.train_result.history[-1]["loss"], 4),
                          "loss_curve": loss_curve(model.train_result.history)}
        return model

    def load(self, path: Path, rt):
        return TextModel.from_pretrained(path, device=rt.device)


class PeopleLMSmallRecipe(PeopleLMRecipe):
    """The people-LM recipe on the small data (``people.SMALL``, 40 people) with :data:`SMALL_PRESET`: what notebook
    02 trains live in fast mode and compares with this recipe's shipped reference. One model for every mode."""

    name = "people-lm-small"
    description = "the people LM on 40 people, 1000 steps: notebook 02's live run in fast mode (about 40 s)"
    mode_aliases = {"default": "fast", "full": "fast"}

    def facts(self, rt):
        from ..data import people

        return people.load(rt, small=True)

    def preset(self, rt) -> LMPreset:
        return SMALL_PRESET

    def config(self, rt) -> dict:
        return {**super().config(rt), "people": "small"}


zoo.register("people-lm", PeopleLMRecipe)
zoo.register("people-lm-small", PeopleLMSmallRecipe)
