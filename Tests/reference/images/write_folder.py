"""Writes an .npz's uint8 images (x: N×1×H×W or N×H×W×3, y: labels) as an image folder, for the
CLI tests: one subfolder per class named by `--names` (a labels file; a "/" in a name, which a
folder name cannot hold, is written "_"), files NNNNN.<format>.

Beside the folder it writes, in the folder's reading order (class folders sorted, then files):
  ordered.npz  the same x and y, so `lethe eval` on it must give exactly the folder's predictions
  decoded.npz  the images as PIL decodes the written files (for JPEG's lossy round trip)

usage: write_folder.py SOURCE.npz OUT_DIR png|jpg [--count N] [--names FILE] [--quality Q]
"""
import argparse
import os
import numpy as np
from PIL import Image

parser = argparse.ArgumentParser()
parser.add_argument("source")
parser.add_argument("out")
parser.add_argument("format", choices=["png", "jpg"])
parser.add_argument("--count", type=int)
parser.add_argument("--names")
parser.add_argument("--quality", type=int, default=90)
args = parser.parse_args()

data = np.load(args.source)
x, y = data["x"], data["y"]
if args.count:
    x, y = x[: args.count], y[: args.count]
names = open(args.names).read().splitlines() if args.names else None


def folder_name(label):
    return str(label) if names is None else names[label].replace("/", "_")


root = os.path.join(args.out, "images")
entries = []
for index, (image, label) in enumerate(zip(x, y)):
    folder = os.path.join(root, folder_name(int(label)))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{index:05d}.{args.format}")
    pixels = image[0] if image.shape[0] == 1 else image
    Image.fromarray(pixels).save(path, quality=args.quality) if args.format == "jpg" else Image.fromarray(pixels).save(path)
    entries.append((folder_name(int(label)), os.path.basename(path), index, path))

entries.sort(key=lambda e: (e[0], e[1]))
order = [e[2] for e in entries]
np.savez(os.path.join(args.out, "ordered.npz"), x=x[order], y=y[order])
decoded = np.stack([np.asarray(Image.open(e[3])) for e in entries])
decoded = decoded[:, None] if decoded.ndim == 3 else decoded.transpose(0, 3, 1, 2)
np.savez(os.path.join(args.out, "decoded.npz"), x=decoded, y=y[order])
print(len(entries))
