"""LRN inference speed at 250×400 (the native sensor), batch 1 and 32 (1 and 8 on the CPU). Part of
``make bench``.

Variants: fp32 eager (the reference), channels_last + bf16 autocast; on the CPU channels_last fp32 and
torch.compile; on a GPU bf16 weights, cuDNN's autotuner (``cudnn.benchmark``), torch.compile (inductor
fuses each ReLU into its convolution), torch.compile with CUDA graphs, and a CUDA graph of the eager
model. Each row gives ms per image, the speed-up over fp32 eager and the largest output difference
from fp32 (relative to the output's range): a faster variant that changes the image is not a win.
On CUDA it also prints the distance to two bounds: compute (37.1 GFLOP per image against the bf16
peak) and memory (~120 MB of activation traffic per image).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from spikeclip_lite.models import LRN

H, W = 250, 400
FLOP_PER_IMAGE = 2 * 185_616 * H * W  # 37.1 GFLOP
BYTES_PER_IMAGE = 120e6  # activation traffic estimate (issue #12's figure)
#: dense bf16 peak and memory bandwidth of known GPUs (vendor figures)
PEAKS = {"H100": (989e12, 3.35e12), "H200": (989e12, 4.8e12), "A100": (312e12, 2.0e12)}


def timed(fn, device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _graphed(model: torch.nn.Module, x: torch.Tensor):
    """A CUDA graph of ``model(x)`` (static shapes): replaying it launches every kernel at once."""
    static_x = x.clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s), torch.inference_mode():
        for _ in range(3):
            model(static_x)
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.inference_mode():
        static_y = model(static_x)

    def run():
        graph.replay()
        return static_y

    return run


def variants(device: torch.device, batch: int) -> dict:
    """name → callable running one batch and returning its output (the same weights in every variant)."""
    torch.manual_seed(0)
    x = torch.rand(batch, 50, H, W, device=device) * 4
    weights = LRN().state_dict()  # the released network as `evaluate` runs it at 250×400: zero padding

    def lrn(dtype: torch.dtype = torch.float32, channels_last: bool = False) -> LRN:
        m = LRN()
        m.load_state_dict(weights)
        m = m.to(device).eval().to(dtype)
        return m.to(memory_format=torch.channels_last) if channels_last else m

    fp32, cl = lrn(), lrn(channels_last=True)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    out = {}

    @torch.inference_mode()
    def eager():
        return fp32(x)

    @torch.inference_mode()
    def cl_bf16():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return cl(x_cl)

    out["fp32 eager"] = eager
    out["channels_last + bf16 autocast"] = cl_bf16
    if device.type == "cpu":
        compiled_cpu = torch.compile(lrn(channels_last=True))
        out["channels_last fp32"] = torch.inference_mode()(lambda: cl(x_cl))
        out["channels_last fp32 + torch.compile"] = torch.inference_mode()(lambda: compiled_cpu(x_cl))
        return out
    xb = x_cl.to(torch.bfloat16)
    bf16 = lrn(torch.bfloat16, channels_last=True)
    out["channels_last + bf16 weights"] = torch.inference_mode()(lambda: bf16(xb))
    # the rest with cuDNN's autotuner on: it times every algorithm once per shape and keeps the fastest
    out["… + cudnn.benchmark"] = ("cudnn", torch.inference_mode()(lambda: bf16(xb)))
    compiled = torch.compile(lrn(torch.bfloat16, True), mode="max-autotune-no-cudagraphs")
    out["… + torch.compile (ReLUs fused into the convolutions)"] = (
        "cudnn",
        torch.inference_mode()(lambda: compiled(xb)),
    )
    graphed = torch.compile(lrn(torch.bfloat16, True), mode="max-autotune")  # inductor's own CUDA graphs
    out["… + torch.compile + CUDA graphs"] = ("cudnn", torch.inference_mode()(lambda: graphed(xb)))
    captured = {}  # the graph is captured on the first call, when the autotuner is already on

    def graph_replay():
        if "run" not in captured:
            captured["run"] = _graphed(bf16, xb)
        return captured["run"]()

    out["… + CUDA graph of the eager bf16 model"] = ("cudnn", graph_replay)
    return out


#: Variants asked for and not available in torch: named in the table, never silently left out.
NOT_AVAILABLE = {
    "fp8 weights and activations": "torch has no fp8 convolution (fp8 exists only for matrix products, "
    "torch._scaled_mm); an im2col + fp8 GEMM LRN is not written",
}
#: Issue #12's targets (ms per image at 250×400 on one H100), by batch size.
TARGETS = {1: 0.20, 32: 0.10}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("outputs"), help="folder for the JSON of the table")
    parser.add_argument("--batches", type=int, nargs="+", default=None)
    args = parser.parse_args()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    batches = args.batches or ([1, 32] if device.type == "cuda" else [1, 8])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\nLRN inference at {H}×{W}, {name}, torch {torch.__version__}\n")
    print("| variant | batch | ms / image | images / s | vs fp32 eager | max output difference vs fp32 | target |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for b in batches:
        base = reference = None
        reps = 20 if device.type == "cuda" else 3
        torch.backends.cudnn.benchmark = False
        for vname, fn in variants(device, b).items():
            if isinstance(fn, tuple):  # ("cudnn", fn): measured with cuDNN's autotuner on
                torch.backends.cudnn.benchmark = True
                fn = fn[1]
            try:
                y = fn().float()
                sec = timed(fn, device, warmup=3 if device.type == "cuda" else 1, repeats=reps) / b
            except Exception as err:  # e.g. bf16 unsupported on an old CPU, compile failure
                print(f"| {vname} | {b} | failed: {type(err).__name__}: {str(err)[:80]} | | | | |")
                continue
            reference = y if reference is None else reference
            diff = float((y - reference).abs().max() / reference.abs().max().clamp_min(1e-12))
            base = base or sec
            target = TARGETS.get(b) if device.type == "cuda" else None
            goal = "" if target is None else f"≤ {target} ms ({'met' if sec * 1e3 <= target else 'not met'})"
            rows.append(dict(variant=vname, batch=b, ms_per_image=sec * 1e3, images_per_s=1 / sec, rel_diff=diff))
            print(f"| {vname} | {b} | {sec * 1e3:.3f} | {1 / sec:,.0f} | {base / sec:.2f}× | {diff:.1e} | {goal} |")
        torch.backends.cudnn.benchmark = False
    for vname, why in NOT_AVAILABLE.items():
        print(f"| {vname} | – | not measured: {why} | | | | |")
    if device.type == "cuda":
        key = next((k for k in PEAKS if k in name), None)
        if key:
            flops, bw = PEAKS[key]
            t_bound = max(FLOP_PER_IMAGE / flops, BYTES_PER_IMAGE / bw)
            best = min(r["ms_per_image"] for r in rows)
            print(
                f"\nbounds on {key}: compute {FLOP_PER_IMAGE / flops * 1e3:.3f} ms, memory "
                f"{BYTES_PER_IMAGE / bw * 1e3:.3f} ms per image → best measured {best:.3f} ms is "
                f"{best / (t_bound * 1e3):.1f}× the larger bound"
            )
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / f"bench_lrn_{device.type}.json").write_text(json.dumps({"device": name, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
