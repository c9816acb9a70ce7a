"""LRN inference speed at 250×400 (the native sensor): fp32 eager vs channels_last + bf16 autocast
(+ channels_last fp32 and torch.compile on the CPU; torch.compile and CUDA graphs on a GPU), batch 1
and 32 (1 and 8 on the CPU). Part of ``make bench``.

Reports ms per image and images per second, and on CUDA the distance to two bounds: compute
(37.1 GFLOP per image against the bf16 peak) and memory (~120 MB of activation traffic per image).
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


def variants(device: torch.device, batch: int) -> dict:
    """name → callable running one batch."""
    torch.manual_seed(0)
    x = torch.rand(batch, 50, H, W, device=device) * 4
    fp32 = LRN().to(device).eval()
    cl = LRN().to(device).eval().to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    amp_dtype = torch.bfloat16
    out = {}

    @torch.inference_mode()
    def eager():
        return fp32(x)

    @torch.inference_mode()
    def cl_bf16():
        with torch.autocast(device.type, dtype=amp_dtype):
            return cl(x_cl)

    out["fp32 eager"] = eager
    out["channels_last + bf16 autocast"] = cl_bf16
    if device.type == "cpu":

        @torch.inference_mode()
        def cl_fp32():
            return cl(x_cl)

        compiled_cpu = torch.compile(LRN().eval().to(memory_format=torch.channels_last))

        @torch.inference_mode()
        def comp_cpu():
            return compiled_cpu(x_cl)

        out["channels_last fp32"] = cl_fp32
        out["channels_last fp32 + torch.compile"] = comp_cpu
    if device.type == "cuda":
        compiled = torch.compile(
            LRN().to(device).eval().to(memory_format=torch.channels_last).to(amp_dtype),
            mode="max-autotune-no-cudagraphs",
        )
        xb = x_cl.to(amp_dtype)

        @torch.inference_mode()
        def comp():
            return compiled(xb)

        out["channels_last + bf16 weights + torch.compile"] = comp
        # CUDA graph of the bf16 channels_last model (static shapes)
        model_g = LRN().to(device).eval().to(memory_format=torch.channels_last).to(amp_dtype)
        static_x = xb.clone()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s), torch.inference_mode():
            for _ in range(3):
                model_g(static_x)
        torch.cuda.current_stream().wait_stream(s)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode():
            model_g(static_x)

        out["channels_last + bf16 weights + CUDA graph"] = graph.replay
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto")
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
    print("| variant | batch | ms / image | images / s | vs fp32 eager |")
    print("|---|---|---|---|---|")
    rows = []
    for b in batches:
        base = None
        reps = 20 if device.type == "cuda" else 3
        for vname, fn in variants(device, b).items():
            try:
                sec = timed(fn, device, warmup=3 if device.type == "cuda" else 1, repeats=reps) / b
            except Exception as err:  # e.g. bf16 unsupported on an old CPU, compile failure
                print(f"| {vname} | {b} | failed: {type(err).__name__} | | |")
                continue
            base = base or sec
            rows.append(dict(variant=vname, batch=b, ms_per_image=sec * 1e3, images_per_s=1 / sec))
            print(f"| {vname} | {b} | {sec * 1e3:.3f} | {1 / sec:,.0f} | {base / sec:.2f}× |")
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
    out = Path("outputs")
    out.mkdir(exist_ok=True)
    (out / f"bench_lrn_{device.type}.json").write_text(json.dumps({"device": name, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
