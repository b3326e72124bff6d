"""The exported dynamic graph on Python's onnxruntime: the "plain .onnx on any ORT" claim.
Runs a vitgraph-exported dynamic .onnx of the tiny Qwen3-VL tower with onnxruntime (CPU EP) on
the fixture's pixel_values/grid_thw and compares with the float64 reference in the same file.
Prints one JSON object; {"skipped": reason} when onnxruntime or numpy is missing.

    python3 scripts/gpu-check-python-ort.py <tiny.onnx> <fixtures/encoder/tiny/io.safetensors>
"""
import json
import struct
import sys

DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}


def read_safetensors(path, np):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(size))
        body = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(body[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def main() -> None:
    try:
        import numpy as np
        import onnxruntime as ort
    except Exception as error:  # noqa: BLE001 - any import failure means "cannot check here"
        print(json.dumps({"skipped": f"{type(error).__name__}: {error}"}))
        return
    model, io_path = sys.argv[1], sys.argv[2]
    io = read_safetensors(io_path, np)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    image_embeds, deepstack = session.run(["image_embeds", "deepstack_embeds"], {"pixel_values": io["pixel_values"].astype(np.float32), "grid_thw": io["grid_thw"].astype(np.int64)})
    diffs = {"image_embeds": float(np.abs(image_embeds - io["expected.image_embeds"]).max())}
    for j in range(deepstack.shape[0]):
        diffs[f"deepstack_embeds[{j}]"] = float(np.abs(deepstack[j] - io[f"expected.deepstack_embeds.{j}"]).max())
    print(json.dumps({"onnxruntime": ort.__version__, "providers": session.get_providers(), "max_abs_vs_float64_reference": diffs, "pass": max(diffs.values()) <= 1e-4}))


if __name__ == "__main__":
    main()
