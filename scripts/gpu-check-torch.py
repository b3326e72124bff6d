"""PyTorch eager baseline for the GPU check: upstream transformers Qwen3VLVisionModel with the
2B tower shape (random weights), timed per image side on the same card, fp32, fp16 and bf16
(fp32 with TF32 off, PyTorch's default for matmuls, as vitgraph's default).
Prints one JSON object; prints {"skipped": reason} when torch/transformers/CUDA are missing.
Inputs are already on the device, so times exclude the host→device copy vitgraph's include.

    python3 scripts/gpu-check-torch.py [224,448,1024,2048] [runs]
"""
import json
import sys
import time


def main() -> None:
    try:
        import torch
        from transformers.models.qwen3_vl.configuration_qwen3_vl import Qwen3VLVisionConfig
        from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLVisionModel
        import transformers
    except Exception as error:  # noqa: BLE001 - any import failure means "no baseline here"
        print(json.dumps({"skipped": f"{type(error).__name__}: {error}"}))
        return
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "torch sees no CUDA device"}))
        return
    sizes = [int(s) for s in sys.argv[1].split(",")] if len(sys.argv) > 1 else [224, 448, 1024, 2048]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    config = Qwen3VLVisionConfig(
        depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16,
        out_hidden_size=2048, deepstack_visual_indexes=[5, 11, 17],
    )
    results = []
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    names = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        torch.manual_seed(0)
        model = Qwen3VLVisionModel._from_config(config, torch_dtype=dtype).to("cuda").eval()
        for side in sizes:
            grid = side // 16
            pixels = torch.rand(grid * grid, 1536, device="cuda", dtype=torch.float32) * 2 - 1
            grid_thw = torch.tensor([[1, grid, grid]], device="cuda")
            times = []
            with torch.inference_mode():
                for _ in range(3):
                    model(pixels, grid_thw=grid_thw)
                torch.cuda.synchronize()
                for _ in range(runs):
                    start = time.perf_counter()
                    model(pixels, grid_thw=grid_thw)
                    torch.cuda.synchronize()
                    times.append((time.perf_counter() - start) * 1000)
            times.sort()
            results.append({
                "case": f"2b {side}² {names[dtype]}",
                "median_ms": times[len(times) // 2],
                "min_ms": times[0],
                "runs": runs,
            })
        del model
        torch.cuda.empty_cache()
    print(json.dumps({
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attention": getattr(config, "_attn_implementation", None) or "default",
        "device": torch.cuda.get_device_name(0),
        "results": results,
    }))


if __name__ == "__main__":
    main()
