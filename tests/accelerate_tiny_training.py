"""A tiny people-LM training run used by tests/test_train.py, in one process or under `accelerate launch`.

Writes the first and last loss (and how many processes took part) to the JSON path given as argv[1].
"""
import json
import sys

import torch
from accelerate import PartialState

from course_lib.data import people
from course_lib.models.people_lm import lm_loss, new_model, qa_batches
from course_lib.runtime import seed_everything
from course_lib.train import TrainConfig, fit
from tests.tiny import TINY_LM

if __name__ == "__main__":
    state = PartialState(cpu=not torch.cuda.is_available())
    seed_everything(0)
    facts = people.load(mode="fast")
    tm = new_model(facts, TINY_LM)
    res = fit(tm.model, list(facts.training_set()), lm_loss,
              TrainConfig(num_steps=60, batch_size=32, lr=1e-2, progress=False), collate_fn=qa_batches(tm))
    losses = [h["loss"] for h in res.history]
    if state.is_main_process:
        json.dump({"num_processes": state.num_processes, "first_loss": sum(losses[:5]) / 5,
                   "last_loss": sum(losses[-5:]) / 5}, open(sys.argv[1], "w"))
