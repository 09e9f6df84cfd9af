# PyTorch reference timing (run by benches/clip_vision.rs): CLIP ViT-B/16 vision tower (+projection, all tokens), batch B at HxW, random
# weights, same thread count as the Rust side on CPU. Prints images/s.
# Usage: torch_clip_bench.py THREADS BATCH H W infer|train [cpu|cuda] [fp32|bf16]
import os, sys, time, torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 8
h, w = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (256, 128)
mode = sys.argv[5] if len(sys.argv) > 5 else "infer"
dev = sys.argv[6] if len(sys.argv) > 6 else "cpu"
dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[sys.argv[7] if len(sys.argv) > 7 else "fp32"]
torch.set_num_threads(threads); torch.manual_seed(0)
cfg = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       image_size=224, patch_size=16, projection_dim=512, attn_implementation="sdpa")
m = CLIPVisionModelWithProjection(cfg).to(dev)
x = torch.randn(batch, 3, h, w, device=dev)
amp = torch.autocast(dev, dtype=dtype, enabled=dtype != torch.float32)
sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
def step():
    with amp:
        return _step()
def _step():
    if mode == "infer":
        with torch.inference_mode():
            out = m(pixel_values=x, interpolate_pos_encoding=True)
            tok = m.visual_projection(m.vision_model.post_layernorm(out.last_hidden_state))
            return tok.sum().item()
    out = m(pixel_values=x, interpolate_pos_encoding=True)
    tok = m.visual_projection(m.vision_model.post_layernorm(out.last_hidden_state))
    tok.float().pow(2).mean().backward()
    m.zero_grad(set_to_none=True)
    return 0.0
if mode == "train": m.train()
else: m.eval()
step(); sync()
rounds = int(os.environ.get("NEXT_BENCH_ROUNDS", 3 if dev == "cpu" else 20)); t = time.perf_counter()
for _ in range(rounds): step()
sync(); s = (time.perf_counter() - t) / rounds
print(f"torch {torch.__version__} {mode} ViT-B/16 batch {batch} {h}x{w} {dev} {dtype} threads {threads}: {batch/s:.2f} images/s ({s*1e3:.0f} ms/batch)")
