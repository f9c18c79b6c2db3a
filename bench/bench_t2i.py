"""Text-to-image throughput (notebook 09): sampling (images/s) and training (images/s, steps/s) of the
shapes-t2i UNet on this machine, for the preset of a mode.

    python bench/bench_t2i.py            # fast preset
    python bench/bench_t2i.py default    # the notebook's default model

- sampling: ``generate`` on 256 prompts with the preset's DDIM steps and classifier-free guidance (each
  DDIM step is one UNet pass on a doubled batch), after one warm-up call;
- training: optimizer steps of the zoo's loss at the preset's batch size on a freshly built UNet (the
  frozen text tower of a random tiny CLIP: the UNet dominates the cost), after two warm-up steps.

The model is built from the preset, not trained: throughput does not depend on the weights. Prints a
table and returns a dict (``run(mode)``); bench/RESULTS.md entries are added by the lead from its output.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("KIT_PROGRESS", "0")


def _tiny_clip(width: int):
    import torch

    from course_lib.models import clip as C

    torch.manual_seed(0)
    tok = C.build_tokenizer()
    preset = C.ClipPreset(width=width, layers=2, heads=4, patch_size=4, projection_dim=32, num_steps=1,
                          batch_size=8, lr=1e-3)
    return C.ShapesCLIP(C.new_clip_model(tok, preset, 16), tok)


def run(mode: str = "fast", sample_prompts: int = 256, train_steps: int | None = None) -> dict:
    import torch

    import course_lib as cl
    from course_lib.models import clip as C
    from course_lib.models import t2i as T
    from course_lib.models import t2i_sampling as S
    from course_lib.evaluation.image import random_prompts

    rt = cl.setup(mode=mode, verbose=False)
    preset = T.PRESETS[mode]
    data = cl.data.shapes.load(rt)
    clip = _tiny_clip(C.PRESETS[mode].width).to(rt.device)
    unet = T.new_unet(preset, data.resolution, clip.text_hidden_size).to(rt.device)
    model = T.ShapesT2I(unet, clip, T.scheduler_config(preset), data.resolution, preset.sample_steps,
                        preset.guidance_scale)
    sync = torch.cuda.synchronize if rt.on_gpu else (lambda: None)
    prompts, _ = random_prompts(sample_prompts)
    model.generate(prompts[:16])
    sync()
    t = time.perf_counter()
    model.generate(prompts, seed=1)
    sync()
    sample_s = time.perf_counter() - t

    steps = train_steps or (100 if rt.on_gpu else 10)
    embeds, caption_ids, uncond = T.caption_table(clip, data.captions)
    batches = T.CaptionBatches(data.images, caption_ids, embeds, uncond, preset.cfg_dropout)
    loss_fn = S.DenoisingLoss(model.scheduler, 0, preset.snr_gamma)
    opt = torch.optim.AdamW(unet.parameters(), lr=preset.lr)
    unet.train()
    g = torch.Generator().manual_seed(0)
    for i in range(steps + 2):
        if i == 2:
            sync()
            t = time.perf_counter()
        idx = torch.randint(len(data.images), (preset.batch_size,), generator=g).tolist()
        batch = {k: v.to(rt.device) for k, v in batches(idx).items()}
        loss = loss_fn(unet, batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync()
    train_s = time.perf_counter() - t
    return {
        "mode": mode, "device": str(rt.device), "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
        + (f", {torch.cuda.get_device_name(0)}" if rt.on_gpu else ""),
        "torch_threads": torch.get_num_threads(), "unet_parameters": model.num_parameters(),
        "resolution": data.resolution, "ddim_steps": preset.sample_steps, "guidance_scale": preset.guidance_scale,
        "sampling_images_per_s": round(sample_prompts / sample_s, 1),
        "batch_size": preset.batch_size, "train_steps_per_s": round(steps / train_s, 2),
        "train_images_per_s": round(steps * preset.batch_size / train_s, 1),
        "preset_train_minutes_estimate": round(preset.num_steps / (steps / train_s) / 60, 2),
    }


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    mode = argv[0] if argv else "fast"
    out = run(mode)
    width = max(len(k) for k in out)
    print(f"shapes-t2i throughput ({mode} preset)")
    for k, v in out.items():
        print(f"  {k:<{width}}  {v}")


if __name__ == "__main__":
    main()
