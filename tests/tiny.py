"""Tiny configurations shared by the unit tests (seconds, not minutes)."""
from __future__ import annotations

from course_lib.models.people_lm import LMPreset

TINY_LM = LMPreset(n_embd=32, n_layer=1, n_head=2, num_steps=40, batch_size=32, lr=1e-2, warmup_steps=5,
                   vocab_size=400, n_positions=96)


def use_tiny_lm(monkeypatch):
    """Make the zoo's people-lm recipe train the tiny preset in fast mode."""
    from course_lib.models import people_lm

    monkeypatch.setitem(people_lm.PRESETS, "fast", TINY_LM)


def own_fast_shapes_models(monkeypatch):
    """Make fast mode train its own shapes models (judge, CLIP, t2i) from the fast presets a test patches in,
    instead of loading default's (the recipes' ``mode_aliases``, issue 14)."""
    from course_lib.models import classifier, clip_train, t2i

    for recipe in (classifier.ShapeJudgeRecipe, clip_train.ShapesCLIPRecipe, t2i.ShapesT2IRecipe):
        monkeypatch.setattr(recipe, "mode_aliases", {})


class Memoriser:
    """A stand-in for a people LM that memorised everything (notebooks 06 and 12's tests): it answers every known
    question (training, paraphrase, world) correctly, except those of ``forgotten``; ``cut=True`` cuts an
    answer to ``max_new_tokens`` tokens as generation would. Built on a real TextModel's net and tokenizer."""

    def __new__(cls, tm, facts, forgotten=(), cut: bool = False):
        from course_lib.models.lm import TextModel

        class _Memoriser(TextModel):
            def clone(self):
                twin = _Memoriser.__new__(_Memoriser)
                TextModel.__init__(twin, self.model, self.tokenizer, self.name)
                twin.known, twin.cut = self.known, self.cut
                return twin

            def answer(self, questions, max_new_tokens=12, batch_size=256, prefix=""):
                def short(a):
                    if not self.cut:
                        return a
                    return self.tokenizer.decode(self.tokenizer(" " + a)["input_ids"][:max_new_tokens]).strip()
                return [short(self.known.get(q, "?")) for q in questions]

        m = _Memoriser(tm.model, tm.tokenizer, "memoriser")
        drop = {q.id for q in forgotten}
        m.known = {q.question: q.answer for q in facts.qa + facts.paraphrases + facts.world_qa if q.id not in drop}
        m.cut = cut
        return m
