"""Write the small seed corpus of the fuzz targets under fuzz/seeds/<target>/ (standard library
only; the two JPEG seeds come from `next synth` and are committed as they are).

    python3 fuzz/make_seeds.py
"""

import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def put(target, name, data):
    folder = os.path.join(HERE, "seeds", target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def safetensors(tensors):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, offset, blob = {}, 0, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blob += raw
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + blob


def png(width, height, grey):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    channels = 1 if grey else 3
    rows = b"".join(b"\0" + bytes((x * 40 + y * 9) % 256 for x in range(width * channels)) for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0 if grey else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def bmp(width, height):
    row = bytes((x * 30) % 256 for x in range(width * 3))
    row += b"\0" * ((4 - len(row) % 4) % 4)
    pixels = row * height
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    head = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return head + info + pixels


def tiff(width, height):
    pixels = bytes((i * 7) % 256 for i in range(width * height))
    entries = [
        (256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
        (262, 3, 1, 1), (273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, height), (279, 4, 1, len(pixels)),
    ]
    ifd_offset = 8 + len(pixels)
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        ifd += struct.pack("<HHII", tag, kind, count, value)
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", ifd_offset) + pixels + ifd


def main():
    put("caption_json", "valid.json", json.dumps([{"item": "000001_cam1_0_01.jpg", "description": "A person in red."}, {"item": "b.jpg", "description": None}]))
    put("caption_json", "bom.json", b"\xef\xbb\xbf" + json.dumps([{"item": "a.jpg", "description": "A car."}]).encode())
    put("caption_json", "duplicate.json", '[{"item":"a","description":"x"},{"item":"a","description":"y"}]')

    with open(os.path.join(ROOT, "tests", "fixtures", "clip", "tiny", "config.json"), "rb") as f:
        put("clip_config", "tiny_clip.json", f.read())
    put("clip_config", "vision_only.json", json.dumps({"model_type": "clip_vision_model", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "image_size": 32, "patch_size": 16, "projection_dim": 32}))
    put("clip_config", "legacy_eos.json", json.dumps({"model_type": "clip", "text_config": {"eos_token_id": 2, "vocab_size": 100}, "vision_config": {"hidden_act": "gelu"}}))

    f32 = lambda n: struct.pack(f"<{n}f", *([0.5] * n))
    put("clip_safetensors", "partial.safetensors", safetensors([
        ("vision_model.embeddings.class_embedding", "F32", [4], f32(4)),
        ("vision_model.embeddings.patch_embedding.weight", "F32", [4, 3, 2, 2], f32(48)),
        ("text_model.embeddings.token_embedding.weight", "F32", [8, 4], f32(32)),
        ("visual_projection.weight", "F16", [4, 4], b"\0\0" * 16),
        ("logit_scale", "F32", [], f32(1)),
    ]))

    put("image_decode", "grey.png", png(6, 4, True))
    put("image_decode", "rgb.png", png(5, 7, False))
    put("image_decode", "rgb.bmp", bmp(4, 3))
    put("image_decode", "grey.tif", tiff(4, 4))

    for kind, name in [(0, "000030_cam1_1_12.jpg"), (1, "0561_c0001_006.jpg"), (2, "0038_s014_v7_003.jpg"), (3, "-1_c1s1_000401_03.jpg"), (4, "0258/v2_n9_s000_022.jpg"), (5, "12_c3_a.png")]:
        put("dataset_names", f"kind{kind}.txt", bytes([kind]) + name.encode())

    i64 = lambda values: struct.pack(f"<{len(values)}q", *values)
    tensors = []
    for s, rows in [("query", 2), ("gallery", 3)]:
        tensors += [(s, "F32", [rows, 2], struct.pack(f"<{rows * 2}f", *[float(i) for i in range(rows * 2)])),
                    (f"{s}_pids", "I64", [rows], i64(list(range(rows)))),
                    (f"{s}_camids", "I64", [rows], i64([0] * rows))]
    put("eval_features", "no_scenes.safetensors", safetensors(tensors))
    tensors += [("query_sceneids", "I64", [2], i64([1, 2])), ("gallery_sceneids", "I64", [3], i64([1, 1, 2]))]
    put("eval_features", "scenes.safetensors", safetensors(tensors))

    put("mllm_answer", "fenced.txt", 'Here you go:\n```json\n{"gender": {"value": "female", "confidence": 0.9}, "upper_color": ["red", 0.8]}\n```')
    put("mllm_answer", "wrapped.txt", '{"attributes": {"color": {"value": "white", "conf": 1}, "type": {"value": "sedan", "score": 0.5}}}')
    put("mllm_answer", "caption.txt", "An adult male seen from the front during daytime in bright lighting. He is wearing a red shirt with grey shorts.")

    for name in ["rgbnt201.toml", "ablation_b.toml", "synthetic.toml"]:
        with open(os.path.join(ROOT, "configs", name), "rb") as f:
            put("config_toml", name, f.read())
    put("config_toml", "model.toml", 'clip = "tiny"\nnum_classes = 3\n[tmse]\ndropout = 0.2\n[loss]\ntriplet_margin = { fixed = 0.3 }\n')
    put("config_toml", "data.toml", 'root = "x"\nkind = "custom"\nimage_size = [64, 32]\nmax_image_side = 1024\n')
    put("config_toml", "loader.toml", "batch_size = 8\ninstances_per_id = 4\nworkers = 1\nprefetch = 1\n")


if __name__ == "__main__":
    main()
