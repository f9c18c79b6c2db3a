"""The shapes text-to-image model: a tiny UNet2DConditionModel on a tiny CLIP text tower; training,
seeded sampling, clone / save_pretrained round trips (text encoder included) and the zoo recipe."""
import pytest
import torch

import course_lib as cl
from course_lib.data import shapes as SD
from course_lib.models import clip as C
from course_lib.models import t2i as T
from course_lib.models import t2i_sampling as S
from course_lib.models import zoo
from tests.tiny import own_fast_shapes_models

# As diffusers' own pipeline tests: a UNet with block_out_channels=(8, 16) and a couple of steps.
TINY_T2I = T.T2IPreset(block_out_channels=(8, 16), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                       up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=4, norm_num_groups=4,
                       num_steps=30, batch_size=32, lr=3e-3, warmup_steps=0, sample_steps=4, ema_decay=None)
TINY_CLIP = C.ClipPreset(width=16, layers=1, heads=2, patch_size=4, projection_dim=16, num_steps=3, batch_size=16,
                         lr=1e-3, warmup_steps=0)
PROMPTS = ["a small red striped circle on the left", "a large blue solid square in the center",
           "a small green dotted triangle on the right"]


def tiny_clip(seed: int = 0):
    """An untrained tiny ShapesCLIP (its random text tower is enough to condition on)."""
    torch.manual_seed(seed)
    tok = C.build_tokenizer()
    return C.ShapesCLIP(C.new_clip_model(tok, TINY_CLIP, 16), tok)


def tiny_t2i(num_steps: int = 30, seed: int = 0, n_images: int = 400):
    cl.setup(mode="fast", verbose=False)  # torch threads from KIT_THREADS
    data = SD.load(mode="fast")
    idx = torch.as_tensor(data.train[:n_images])
    preset = T.T2IPreset(**{**TINY_T2I.__dict__, "num_steps": num_steps})
    return T.train_t2i(tiny_clip(), data.images[idx], [data.captions[i] for i in idx.tolist()], preset, seed=seed,
                       progress=False)


@pytest.fixture(scope="module")
def model():
    return tiny_t2i()


def test_architecture_follows_stable_diffusion(model):
    assert model.modality == "t2i"
    assert model.text_encoder is model.clip.model.text_model
    assert model.unet.config.cross_attention_dim == model.clip.text_hidden_size
    assert any(".attn2." in n for n, _ in model.unet.named_parameters()), "no cross-attention"
    emb = model.encode_prompts(PROMPTS)
    assert emb.shape == (3, model.tokenizer.model_max_length, model.clip.text_hidden_size)
    assert not any(p.grad is not None for p in model.text_encoder.parameters()), "the text encoder stays frozen"


def test_training_loss_decreases(model):
    h = [r["loss"] for r in model.train_result.history]
    first, last = sum(h[:5]) / 5, sum(h[-5:]) / 5
    print(f"denoising loss {first:.3f} -> {last:.3f}")  # measured about 1.0 -> 0.3
    assert last < 0.7 * first


def test_generate_is_seeded_and_batch_independent(model):
    a = model.generate(PROMPTS, seed=0)
    assert a.shape == (3, 3, 16, 16) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, model.generate(PROMPTS, seed=0))
    assert torch.allclose(a, model.generate(PROMPTS, seed=0, batch_size=1), atol=1e-3)  # batched kernels round differently
    assert not torch.allclose(a, model.generate(PROMPTS, seed=1), atol=1e-3)
    # precomputed embeddings give the same images as the prompts they encode
    assert torch.allclose(a, model.generate(prompt_embeds=model.encode_prompts(PROMPTS), seed=0), atol=1e-5)


def test_guidance_and_step_count_change_the_samples(model):
    a = model.generate(PROMPTS[:1], seed=0, guidance_scale=1.0)
    b = model.generate(PROMPTS[:1], seed=0, guidance_scale=5.0)
    c = model.generate(PROMPTS[:1], seed=0, num_inference_steps=2)
    assert not torch.allclose(a, b, atol=1e-4) and not torch.allclose(a, c, atol=1e-4)


def test_bad_input_is_a_clear_error(model):
    with pytest.raises(TypeError, match="list of strings"):
        model.generate("a red circle")
    with pytest.raises(ValueError, match="num_inference_steps"):
        model.generate(PROMPTS, num_inference_steps=0)
    assert model.generate([]).shape == (0, 3, 16, 16)


def test_guided_eps_is_classifier_free_guidance():
    calls = []

    def eps_fn(x, t, c):
        calls.append(len(x))
        return c.mean(dim=(1, 2)).view(-1, 1, 1, 1).expand_as(x)

    x = torch.zeros(2, 3, 4, 4)
    cond, uncond = torch.full((2, 5, 8), 3.0), torch.full((1, 5, 8), 1.0)
    out = S.guided_eps(eps_fn, x, torch.tensor(10), cond, uncond, 4.0)
    assert torch.allclose(out, torch.full_like(x, 1.0 + 4.0 * (3.0 - 1.0)))  # e_u + w (e_c - e_u)
    assert calls == [4]  # one doubled batch


def test_v_prediction_converts_to_eps():
    sched = S.ddpm_scheduler({"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
                              "prediction_type": "v_prediction"})
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    x_t, noise, t = S.noised(sched, x0, g)
    v = S.target_for(sched, x0, noise, t)
    assert torch.allclose(S.eps_from_output(sched, v, x_t, t), noise, atol=1e-4)


def test_ddim_partial_generation_stops_where_asked(model):
    sched = S.ddim_scheduler(model.scheduler_config, 4)
    noise = model.initial_noise(2, seed=0)
    cond, uncond = model.encode_prompts(PROMPTS[:2]), model.encode_prompts([""])
    x0, t0 = S.ddim_sample(model.eps, noise, cond, uncond, sched, 3.0, stop_after=0)
    assert torch.equal(x0, noise) and int(t0) == int(sched.timesteps[0])
    x2, t2 = S.ddim_sample(model.eps, noise, cond, uncond, sched, 3.0, stop_after=2)
    assert int(t2) == int(sched.timesteps[2]) and not torch.allclose(x2, noise)


def test_clone_is_independent_text_encoder_included(model):
    twin = model.clone()
    with torch.no_grad():
        next(twin.unet.parameters()).add_(1.0)
        twin.text_encoder.embeddings.token_embedding.weight.add_(1.0)
    assert not torch.equal(next(twin.unet.parameters()), next(model.unet.parameters()))
    assert not torch.equal(twin.text_encoder.embeddings.token_embedding.weight,
                           model.text_encoder.embeddings.token_embedding.weight)
    assert twin.text_encoder is twin.clip.model.text_model


def test_save_pretrained_round_trip_with_an_edited_text_encoder(model, tmp_path):
    twin = model.clone()
    with torch.no_grad():
        twin.text_encoder.encoder.layers[0].mlp.fc1.weight.mul_(0.5)  # an edit SLUG could make
    twin.save_pretrained(tmp_path)
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (tmp_path / "clip" / "model.safetensors").is_file()
    back = T.ShapesT2I.from_pretrained(tmp_path)
    assert torch.allclose(back.generate(PROMPTS, seed=3), twin.generate(PROMPTS, seed=3), atol=1e-5)
    assert not torch.allclose(back.encode_prompts(PROMPTS), model.encode_prompts(PROMPTS), atol=1e-4)


def test_training_is_seeded():
    a, b = tiny_t2i(num_steps=3, n_images=64), tiny_t2i(num_steps=3, n_images=64)
    assert all(torch.equal(x, y) for x, y in zip(a.unet.parameters(), b.unet.parameters()))


@pytest.fixture
def tiny_presets(monkeypatch):
    monkeypatch.setitem(T.PRESETS, "fast", T.T2IPreset(**{**TINY_T2I.__dict__, "num_steps": 3}))
    monkeypatch.setitem(C.PRESETS, "fast", TINY_CLIP)
    own_fast_shapes_models(monkeypatch)


def test_zoo_trains_then_loads_from_the_cache(rt, tiny_presets, capsys):
    a = cl.zoo.load("shapes-t2i", rt)
    out = capsys.readouterr().out
    assert "training shapes-t2i" in out and "training shapes-clip" in out
    b = cl.zoo.load("shapes-t2i", rt)
    assert "loaded shapes-t2i from the cache" in capsys.readouterr().out
    assert all(torch.equal(x, y) for x, y in zip(a.unet.parameters(), b.unet.parameters()))
    assert torch.allclose(a.generate(PROMPTS, seed=0), b.generate(PROMPTS, seed=0), atol=1e-5)
    info = zoo.info("shapes-t2i", rt)
    assert info["train_images"] == len(SD.load(rt).train) and info["loss_curve"]


def test_zoo_exclude_retrains_without_the_images(rt, tiny_presets):
    split = SD.load(rt).split("purple triangle")
    gold = cl.zoo.load("shapes-t2i", rt, exclude=split.forget_set)
    info = zoo.info("shapes-t2i", rt, exclude=split.forget_set)
    assert info["train_images"] == len(split.retain) and gold.modality == "t2i"
    with pytest.raises(ValueError, match="exclude"):
        cl.zoo.load("shapes-t2i", rt, exclude=["img9999"])
