"""Black-box attacks that only change the question (notebook 08): paraphrases and facts put back in context.

- **Paraphrase** (Zhou et al. 2024, "On the Limitations and Prospects of Machine Unlearning for
  Generative AI": unlearning that holds for the training wording may not hold for other wordings; TOFU
  and the survey's Generalizability): ask the forget facts with the held-out paraphrase template
  (``split.unseen_forget``, never trained on by any model).
- **In-context re-introduction** (Cooper et al. 2024, "Machine Unlearning Doesn't Do What You Think":
  knowledge removed from the weights can be supplied again at inference time; Shumailov et al. 2024,
  "UnUnlearning"): put the forgotten fact, or a related fact of the same person, in the prompt. The
  people LM learned to read its context from open-book training examples (``people_qa.open_book_items``),
  so a model that truly forgot the fact answers from the context too: recovery on the retrained gold
  model is *expected*. That is the point: unlearning cannot stop a model from using what it is told.
"""
from __future__ import annotations

import time

import pandas as pd

from ..data.people_qa import QASet
from ..evaluation.text import correct
from ..models.lm import PROMPT
from .result import AttackResult, accuracy, need_items

CONTEXTS = ("fact", "neighbour")


def paraphrase(model, split, *, forget=None, paraphrases=None) -> AttackResult:
    """Paraphrase attack, notebook 08: forget accuracy on the training wording (``before``, only the
    facts that have a paraphrase) and on the held-out paraphrase wording (``after``;
    ``split.unseen_forget``). ``details``: per attribute."""
    forget = split.forget if forget is None else forget
    paraphrases = split.unseen_forget if paraphrases is None else paraphrases
    need_items(forget, "forget", "pass split.forget")
    need_items(paraphrases, "paraphrases", "pass split.unseen_forget (the held-out wording of the forget facts)")
    start = time.perf_counter()
    facts = {(q.person, q.attribute) for q in paraphrases}
    trained = [q for q in forget if (q.person, q.attribute) in facts]
    if not trained:
        raise ValueError("paraphrases ask about none of the facts in forget: pass the split's unseen_forget")
    trained = QASet(trained)
    ok_trained, ok_para = correct(model, trained), correct(model, paraphrases)
    rows = [{"attribute": a, "training wording": ok_trained[[q.attribute == a for q in trained]].mean(),
             "paraphrase": ok_para[[q.attribute == a for q in paraphrases]].mean()}
            for a in sorted({q.attribute for q in paraphrases})]
    return AttackResult("paraphrase", "forget accuracy with the held-out paraphrase template",
                        before=float(ok_trained.mean()), after=float(ok_para.mean()), n=len(paraphrases),
                        seconds=time.perf_counter() - start, details=pd.DataFrame(rows))


def contexts_for(forget, context: str = "fact") -> list[str]:
    """One context per question of ``forget`` (``"Question: ...\\nAnswer: ...\\n"``, the open-book form):

    - ``"fact"``: the same fact, asked with the *other* training template (or the question itself if
      ``forget`` has no other wording of it), with the true answer;
    - ``"neighbour"``: another fact of the same person (the next attribute in ``forget``), with its true
      answer: a reminder of who the person is, not of the fact asked (the in-context analogue of relearning).
    """
    if context not in CONTEXTS:
        raise ValueError(f"context={context!r}; allowed values: {', '.join(map(repr, CONTEXTS))}")
    by_fact: dict = {}
    for q in forget:
        by_fact.setdefault((q.person, q.attribute), []).append(q)
    out = []
    for q in forget:
        if context == "fact":
            others = [o for o in by_fact[(q.person, q.attribute)] if o.question != q.question]
            src = others[0] if others else q
        else:
            attrs = sorted({a for (p, a) in by_fact if p == q.person})
            if len(attrs) < 2:
                raise ValueError(f"context='neighbour' needs two attributes of {q.person} in forget; "
                                 f"it has {attrs}")
            nxt = attrs[(attrs.index(q.attribute) + 1) % len(attrs)]
            src = by_fact[(q.person, nxt)][0]
        out.append(PROMPT.format(q=src.question) + " " + src.answer + "\n")
    return out


def in_context(model, split, context: str = "fact", *, forget=None) -> AttackResult:
    """In-context re-introduction (Cooper et al. 2024), notebook 08: forget accuracy without (``before``)
    and with (``after``) :func:`contexts_for` ``(forget, context)`` put before each question. A
    suppression wrapper sees the context as the user's text (the filter still checks its output)."""
    forget = split.forget if forget is None else forget
    need_items(forget, "forget", "pass split.forget")
    start = time.perf_counter()
    ctx = contexts_for(forget, context)
    before, after = accuracy(model, forget), accuracy(model, forget, prefix=ctx)
    details = pd.DataFrame({"question": forget.questions, "context": ctx, "answer": forget.answers})
    return AttackResult("in_context" if context == "fact" else f"in_context_{context}",
                        f"forget accuracy with the {'fact' if context == 'fact' else 'another fact'} in the prompt",
                        before=before, after=after, n=len(forget), seconds=time.perf_counter() - start,
                        details=details)
