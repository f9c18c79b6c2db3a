"""The people LM: a `tokenizers` BPE tokenizer and a tiny `transformers.GPT2LMHeadModel` (notebook 02).

:class:`TextModel` wraps the model and tokenizer with the two helpers every text notebook needs:
answer questions greedily (:meth:`TextModel.answer`) and score an answer's log-probability per token
(:meth:`TextModel.answer_logprobs`). The same wrapper runs on a real checkpoint
(``TextModel.from_pretrained(path)``) because it only uses the causal-LM interface.

Prompt format: ``"Question: {q}\\nAnswer:"`` followed by ``" {a}<|endoftext|>"``; the loss is on the
answer tokens only (as TOFU fine-tunes its models).
"""
from __future__ import annotations

import inspect
import weakref
from typing import Sequence

import numpy as np
import torch

from .wrapper import ModelWithTokenizer

EOS = "<|endoftext|>"
PROMPT = "Question: {q}\nAnswer:"
IGNORE = -100
_IDS_CACHE_MAX = 50_000  # strings remembered per tokenizer (the course's QA universe is a few thousand)
_ids_caches: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def token_ids(tok, texts: Sequence[str]) -> list[list[int]]:
    """``tok(texts, add_special_tokens=False)["input_ids"]``, remembering each string's ids per tokenizer.

    Training and evaluation encode the same questions and answers at every step; the ids of a string never
    change for one tokenizer, so the result is identical to tokenizing again (tests/test_lm.py), only faster."""
    cache = _ids_caches.get(tok)
    if cache is None:
        cache = _ids_caches[tok] = {}
    missing = list(dict.fromkeys(t for t in texts if t not in cache))
    if missing and len(cache) + len(missing) > _IDS_CACHE_MAX:  # full: start again, with this call's strings
        cache.clear()
        missing = list(dict.fromkeys(texts))
    if missing:
        cache.update(zip(missing, tok(missing, add_special_tokens=False)["input_ids"]))
    return [cache[t] for t in texts]



def submodule(net, paths: Sequence[str]):
    """The first of the dotted ``paths`` that exists on ``net`` (e.g. GPT-2's ``transformer.h``, Llama's
    ``model.layers``), or None: how the kit finds the same part in different causal LM architectures
    (RMU's blocks, notebook 06; the logit lens's final norm, notebook 08)."""
    for path in paths:
        mod = net
        try:
            for part in path.split("."):
                mod = getattr(mod, part)
        except AttributeError:
            continue
        return mod
    return None

def build_tokenizer(texts: Sequence[str], vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer on ``texts`` and wrap it as a ``PreTrainedTokenizerFast``.

    Digits are split one per token, so that a phone number's area code is a prefix of its tokens
    (notebook 11 uses that latent structure).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(texts), trainer=trainer)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS,
                                 unk_token=EOS, model_max_length=128)
    return hf


class TextModel(ModelWithTokenizer):
    """A causal LM and its tokenizer, with batched QA helpers. Not an ``nn.Module``: ``.model`` is.

    Unlearning methods train ``.model``; :meth:`clone` gives an independent copy (the base model is
    never modified in place).
    """

    auto_class = "AutoModelForCausalLM"
    default_name = "people-lm"

    # -- encoding -----------------------------------------------------------------------------
    @staticmethod
    def prompt(question: str, context: str = "") -> str:
        """``context`` (a fact, demonstrations, a system prompt) followed by ``"Question: ...\nAnswer:"``."""
        return context + PROMPT.format(q=question)

    @staticmethod
    def _contexts(contexts, n: int) -> list[str]:
        if contexts is None or isinstance(contexts, str):
            return [contexts or ""] * n
        contexts = list(contexts)
        if len(contexts) != n:
            raise ValueError(f"{n} questions but {len(contexts)} contexts")
        return contexts

    def encode_qa(self, questions: Sequence[str], answers: Sequence[str], with_eos: bool = True,
                  contexts: Sequence[str] | str | None = None) -> dict:
        """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 outside the answer).

        ``contexts``: one string for every question, or one per question, put before each prompt."""
        if len(questions) != len(answers):
            raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
        tok = self.tokenizer
        ctx = self._contexts(contexts, len(questions))
        p_ids = token_ids(tok, [self.prompt(q, c) for q, c in zip(questions, ctx)])
        a_ids = token_ids(tok, [" " + a + (EOS if with_eos else "") for a in answers])
        seqs = [p + a for p, a in zip(p_ids, a_ids)]
        width = max(len(s) for s in seqs)
        pad = tok.pad_token_id
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], dtype=torch.long)
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], dtype=torch.long)
        labels = torch.tensor([[IGNORE] * len(p) + a + [IGNORE] * (width - len(p) - len(a))
                               for p, a in zip(p_ids, a_ids)], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    # -- the two helpers --------------------------------------------------------------------------
    @torch.no_grad()
    def answer_logprobs(self, questions: Sequence[str], answers: Sequence[str], batch_size: int = 256,
                        with_eos: bool = False, prefix: Sequence[str] | str = "") -> list[np.ndarray]:
        """log P(answer token | question, previous answer tokens) for each answer: a list of arrays.

        Batched over the questions. ``with_eos`` also scores the end-of-answer token. ``prefix``: a
        context before every prompt (one string, or one per question).
        """
        self.model.eval()
        out: list[np.ndarray] = []
        ctx = self._contexts(prefix, len(questions))
        for s in range(0, len(questions), batch_size):
            enc = self.encode_qa(questions[s:s + batch_size], answers[s:s + batch_size], with_eos=with_eos,
                                 contexts=ctx[s:s + batch_size])
            enc = {k: v.to(self.device) for k, v in enc.items()}
            logits = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            target = enc["labels"][:, 1:]
            tok_lp = logp.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)
            keep = target != IGNORE
            for row, k in zip(tok_lp.cpu().numpy(), keep.cpu().numpy()):
                out.append(row[k])
        return out

    @torch.no_grad()
    def answer(self, questions: Sequence[str], max_new_tokens: int = 12, batch_size: int = 256,
               prefix: Sequence[str] | str = "") -> list[str]:
        """Greedy answers to ``questions`` (batched, left-padded). ``prefix`` is put before each prompt
        (a system prompt, a fact, in-context demonstrations): one string, or one per question."""
        self.model.eval()
        tok = self.tokenizer
        eos = tok.eos_token_id
        answers: list[str] = []
        ctx = self._contexts(prefix, len(questions))
        for s in range(0, len(questions), batch_size):
            ids, mask = left_padded_prompts(tok, questions[s:s + batch_size], ctx[s:s + batch_size], self.device)
            pos = (mask.cumsum(-1) - 1).clamp_min(0)
            past, cur, cur_pos = None, ids, pos
            done = torch.zeros(len(ids), dtype=torch.bool, device=self.device)
            new = []
            name = cache_kwarg(self.model)
            for _ in range(max_new_tokens):
                out = self.model(input_ids=cur, attention_mask=mask, position_ids=cur_pos, use_cache=True,
                                 **{name: past})
                past = getattr(out, name)
                nxt = out.logits[:, -1].argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, eos), nxt)
                new.append(nxt)
                done |= nxt == eos
                if bool(done.all()):
                    break
                cur = nxt[:, None]
                cur_pos = cur_pos[:, -1:] + 1
                mask = torch.cat([mask, torch.ones_like(cur)], dim=1)
            gen = torch.stack(new, dim=1).cpu().tolist()
            for row in gen:
                if eos in row:
                    row = row[:row.index(eos)]
                answers.append(tok.decode(row).strip())
        return answers


def cache_kwarg(net) -> str:
    """The name under which ``net.forward`` takes and returns its key/value cache: ``cache`` in transformers
    releases that renamed it (they warn on ``past_key_values``), else ``past_key_values``. A PEFT wrapper passes
    its keyword arguments on to the model it wraps, so that model's signature decides."""
    inner = net.get_base_model() if hasattr(net, "get_base_model") else net
    name = _CACHE_KWARG.get(type(inner))
    if name is None:
        params = inspect.signature(inner.forward).parameters
        name = _CACHE_KWARG[type(inner)] = "cache" if "cache" in params else "past_key_values"
    return name


_CACHE_KWARG: dict = {}


def left_padded_prompts(tok, questions: Sequence[str], contexts: Sequence[str], device="cpu"):
    """``(ids, mask)``: the prompts of ``questions`` (each after its context), tokenized and left-padded to one
    width, so that every row's next token is generated at the same position (greedy answering, notebooks 02, 07)."""
    prompts = token_ids(tok, [TextModel.prompt(q, c) for q, c in zip(questions, contexts)])
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in prompts], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], dtype=torch.long)
    return ids.to(device), mask.to(device)
