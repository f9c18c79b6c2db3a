"""SLUG (unlearning/slug.py) and the iterative CLIP baselines (unlearning/clip_methods.py) on a tiny CLIP."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.test_clip import TINY_CLIP


@pytest.fixture(scope="module")
def setup():
    import course_lib as cl
    from course_lib.models.clip import train_shapes_clip

    cl.setup(mode="fast", verbose=False)  # seeds and torch threads (KIT_THREADS)
    data = cl.data.shapes.load(mode="fast")
    first_blocks = data.train[data.train < 1080]  # the 900 training images of the first 2 blocks (seconds to train)
    clip = train_shapes_clip(data, TINY_CLIP, first_blocks, seed=0, progress=False)  # zero-shot colour ~0.76
    return clip, data.split("red")


def test_layer_table_matches_a_direct_computation(setup):
    from course_lib.unlearning import slug

    clip, split = setup
    grads = slug.compute_gradients(clip, split.forget_set, split.retain_set, retain_samples=64, seed=1)
    table = slug.layer_table(clip, grads=grads)
    assert set(table.tower) == {"vision", "text"} and table.on_front.any()
    assert not table.layer.str.contains("embedding|bias|layer_norm|layrnorm").any()
    layer = "text_model.encoder.layers.0.mlp.fc1.weight"
    # by hand: the forget loss over every forget pair, the CLIP loss over the same retain sample
    w = dict(clip.model.named_parameters())[layer]
    clip.model.zero_grad()
    img, txt = clip.image_embeds(split.forget_set.images), clip.text_embeds(split.forget_set.captions)
    F.cosine_similarity(img, txt).mean().backward()
    g_f = w.grad.clone()
    clip.model.zero_grad()
    pick = grads.meta["retain_indices"]
    clip.pairs_loss(split.retain_set.images[pick], [split.retain_set.captions[i] for i in pick]).backward()
    g_r = w.grad.clone()
    clip.model.zero_grad()
    row = table.set_index("layer").loc[layer]
    assert row.importance == pytest.approx(float(g_f.norm() / w.norm()), rel=1e-4)
    assert row.alignment == pytest.approx(abs(float(F.cosine_similarity(g_f.flatten(), g_r.flatten(), dim=0))),
                                          rel=1e-3, abs=1e-5)
    # the front: no layer of the same tower has both a higher importance and a lower alignment
    for tower, part in table.groupby("tower"):
        for _, r in part[part.on_front].iterrows():
            assert not ((part.importance > r.importance) & (part.alignment < r.alignment)).any()


def test_pareto_front_small_example():
    from course_lib.unlearning.slug import pareto_front

    front = pareto_front([1.0, 2.0, 0.5, 3.0], [0.5, 0.1, 0.05, 0.9])
    assert front.tolist() == [False, True, True, True]


def test_search_returns_the_smallest_step_meeting_the_target():
    from course_lib.unlearning.slug import search_step

    threshold = 0.37  # a monotone forget curve crossing target 0.1 at step 0.37 * 0.9 = 0.333
    curve = lambda s: max(0.0, 1 - s / threshold)  # noqa: E731
    step, trace = search_step(curve, 0.1, start=0.1, iters=10)
    assert curve(step) <= 0.1
    assert 0.333 <= step <= 0.333 + 0.4 / 2**10 + 1e-9  # bracket [0.2, 0.4] halved 10 times
    assert all(r["step"] < step for r in trace if not r["met"])
    none, _ = search_step(curve, -1.0, max_step=2.0)
    assert none is None


def test_apply_step_changes_one_tensor_and_restores(setup):
    from course_lib.unlearning import slug

    clip, split = setup
    twin = clip.clone()
    grads = slug.compute_gradients(twin, split.forget_set, split.retain_set, retain_samples=32)
    layer = "vision_model.encoder.layers.0.self_attn.v_proj.weight"
    before = {k: v.clone() for k, v in twin.model.state_dict().items()}
    w0 = before[layer]
    slug.apply_step(twin, layer, 0.3, grads)
    slug.apply_step(twin, layer, 0.2, grads)  # does not accumulate: relative to the original weight
    after = twin.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [layer]
    assert float((after[layer] - w0).norm() / w0.norm()) == pytest.approx(0.2, rel=1e-4)
    slug.restore(twin)
    assert torch.equal(twin.model.state_dict()[layer], w0)
    with pytest.raises(ValueError, match="candidate layers"):
        slug.apply_step(twin, "vision_model.no_such_layer", 0.1, grads)
    with pytest.raises(ValueError, match="shape"):
        slug.apply_step(twin, layer, 0.1, grads.forget["text_projection.weight"])


def test_slug_unlearns_with_one_layer(setup):
    import course_lib as cl
    from course_lib.unlearning.slug import zero_shot_report

    clip, split = setup
    res = cl.unlearn(clip, split.forget_set, split.retain_set, method="slug", target_accuracy=0.1, max_layers=3,
                     search_iters=4, progress=False)
    base, new = clip.model.state_dict(), res.model.model.state_dict()
    changed = [k for k in base if not torch.equal(base[k], new[k])]
    assert changed == [res.extras["layer"]]
    before, after = res.extras["before"], res.extras["after"]
    print("before", before, "after", after, "step", res.extras["step"])
    assert before["forget_accuracy"] > 0.5 and after["forget_accuracy"] <= 0.1  # measured 0.80 -> 0.09
    assert res.extras["gradient_evaluations"] == 2
    assert zero_shot_report(clip, split.forget_set, split.retain_set, "red") == pytest.approx(
        zero_shot_report(clip, split.forget_set, split.retain_set, "red"))  # the base model is untouched
    assert {"layer", "tower", "importance", "alignment", "on_front"} <= set(res.extras["layer_table"].columns)


def test_clip_ga_raises_the_forget_loss(setup):
    import course_lib as cl

    clip, split = setup
    for method in ("clip_ga", "clip_grad_diff"):
        res = cl.unlearn(clip, split.forget_set, split.retain_set, method=method, num_steps=8, lr=3e-4,
                         batch_size=32, progress=False)
        losses = [h["forget_loss"] for h in res.history]
        print(method, losses[0], losses[-1])
        assert np.mean(losses[-3:]) > losses[0] + 0.05


def test_bad_inputs_are_clear_errors(setup):
    import course_lib as cl
    from course_lib.unlearning import slug

    clip, split = setup
    empty = split.data.subset([], concept="red")
    with pytest.raises(ValueError, match="forget set is empty"):
        cl.unlearn(clip, empty, split.retain_set, method="slug")
    with pytest.raises(ValueError, match="forget set is empty"):
        slug.compute_gradients(clip, empty, split.retain_set)
    with pytest.raises(ValueError, match="towers"):
        slug.candidate_layers(clip, towers="audio")
    with pytest.raises(ValueError, match="towers"):
        cl.unlearn(clip, split.forget_set, split.retain_set, method="slug", towers="audio")
    with pytest.raises(ValueError, match="not a class"):
        slug.concept_attributes("wobbly")
    with pytest.raises(TypeError, match="slug unlearns"):
        cl.unlearn(object(), split.forget_set, split.retain_set, method="slug")


def test_plots_draw(setup):
    import matplotlib

    matplotlib.use("Agg")
    from course_lib import plots_slug
    from course_lib.unlearning import slug

    clip, split = setup
    table = slug.layer_table(clip, split.forget_set, split.retain_set, retain_samples=32)
    assert plots_slug.short_layer_name("text_model.encoder.layers.1.mlp.fc2.weight") == "text L1 fc2"
    assert plots_slug.short_layer_name("visual_projection.weight") == "vision projection"
    fig = plots_slug.layer_pareto(table, chosen=table.layer.iloc[0])
    assert len(fig.axes) == 2
    report = {"forget_accuracy": 0.9, "retain_same_attribute": 0.8, "retain_other_attributes": 0.95}
    ax = plots_slug.zero_shot_bars({"base": report, "SLUG": {**report, "forget_accuracy": 0.1}})
    assert len(ax.patches) == 6
    trace = [{"layer": "a", "step": 0.1, "forget_accuracy": 0.5}, {"layer": "a", "step": 0.2, "forget_accuracy": 0.05}]
    plots_slug.search_trace(trace, 0.1, chosen="a")
    per_class = plots_slug.per_class_accuracy(clip, split.forget_set, "colour")
    assert per_class["red"] >= 0 and np.isnan(per_class["blue"])  # the forget set holds only red images


class _TextToImageStandIn:
    """What SLUG needs of a text-to-image model: ``modality == "t2i"``, a ``.clip`` whose text tower is its
    (frozen) text encoder, and ``clone()``."""

    modality = "t2i"

    def __init__(self, clip):
        self.clip = clip
        for p in clip.model.parameters():
            p.requires_grad_(False)

    def clone(self):
        return _TextToImageStandIn(self.clip.clone())


def test_slug_on_a_text_to_image_model_edits_one_text_encoder_layer(setup):
    import course_lib as cl

    clip, split = setup
    t2i = _TextToImageStandIn(clip.clone())
    res = cl.unlearn(t2i, split.forget_set, split.retain_set, method="slug", target_accuracy=0.3, max_layers=2,
                     search_iters=3, progress=False)
    layer = res.extras["layer"]
    assert layer.startswith("text_model.encoder.") and set(res.extras["layer_table"].tower) == {"text"}
    base, new = t2i.clip.model.state_dict(), res.model.clip.model.state_dict()
    assert [k for k in base if not torch.equal(base[k], new[k])] == [layer]
    assert not any(p.requires_grad for p in res.model.clip.model.parameters())  # still frozen afterwards
