"""Builds the image-folder fixture the Swift tests compare against, and torchvision's answers on it.

`pages/` holds small pages of other sizes and kinds than Fashion-MNIST's (RGB, RGBA, palette, gray,
16-bit gray and RGB PNG, RGB and gray JPEG), drawn from a fixed seed; `torchvision.npz` holds, for
each page in ImageFolder order, what torchvision's ImageFolder pipeline gives:

    rgb_resize_crop  Resize(20) + CenterCrop(16) + ToTensor, on pil_loader's convert("RGB")
    gray_resize_crop the same on convert("L")
    labels           ImageFolder's targets

Run with the torch/torchvision Python (not needed by CI, which reads the committed outputs):
    /work/pyenv/bin/python Tests/reference/images/make_image_reference.py
"""
import os
import numpy as np
from PIL import Image
from torchvision import datasets, transforms

here = os.path.dirname(os.path.abspath(__file__))
pages = os.path.join(here, "pages")
rng = np.random.default_rng(20261129)


def smooth(height, width, channels):
    """A smooth random picture with some edges, so resizing has structure to get right."""
    y, x = np.mgrid[0:height, 0:width]
    out = np.zeros((height, width, channels))
    for c in range(channels):
        a, b, p = rng.uniform(0.05, 0.4, 3)
        out[..., c] = 127 + 100 * np.sin(a * x + p) * np.cos(b * y) + 25 * (x > width * rng.uniform(0.3, 0.7))
    return np.clip(out + rng.normal(0, 6, out.shape), 0, 255)


def save_all():
    for name in ["boots", "coats"]:
        os.makedirs(os.path.join(pages, name), exist_ok=True)
    sizes = iter([(37, 50), (64, 48), (30, 100), (41, 41), (23, 19), (80, 33), (48, 64), (26, 26), (57, 31), (20, 70)])
    def path(folder, stem):
        return os.path.join(pages, folder, stem)
    h, w = next(sizes); Image.fromarray(smooth(h, w, 3).astype(np.uint8), "RGB").save(path("boots", "a_rgb.png"))
    h, w = next(sizes); Image.fromarray(smooth(h, w, 4).astype(np.uint8), "RGBA").save(path("boots", "b_rgba.png"))
    h, w = next(sizes); Image.fromarray(smooth(h, w, 3).astype(np.uint8), "RGB").quantize(32).save(path("boots", "c_palette.png"))
    h, w = next(sizes); Image.fromarray(smooth(h, w, 1)[..., 0].astype(np.uint8), "L").save(path("boots", "d_gray.png"))
    h, w = next(sizes); Image.fromarray(smooth(h, w, 3).astype(np.uint8), "RGB").save(path("boots", "e_rgb.jpg"), quality=92)
    h, w = next(sizes); Image.fromarray(smooth(h, w, 3).astype(np.uint8), "RGB").save(path("coats", "f_rgb.png"))
    h, w = next(sizes); Image.fromarray(smooth(h, w, 1)[..., 0].astype(np.uint8), "L").save(path("coats", "g_gray.jpg"), quality=85)
    h, w = next(sizes); Image.fromarray(smooth(h, w, 3).astype(np.uint8), "RGB").save(path("coats", "h_progressive.jpg"), progressive=True)
    h, w = next(sizes); Image.fromarray(smooth(h, w, 2).astype(np.uint8), "LA").save(path("coats", "i_gray_alpha.png"))
    h, w = next(sizes); Image.fromarray(smooth(h, w, 3).astype(np.uint8), "RGB").save(path("coats", "j_wide.png"))


def reference():
    def stack(mode, transform):
        data = datasets.ImageFolder(pages, transform=transform, loader=lambda p: Image.open(p).convert(mode))
        return np.stack([data[i][0].numpy() for i in range(len(data))]), np.array(data.targets)
    rgb, labels = stack("RGB", transforms.Compose([transforms.Resize(20), transforms.CenterCrop(16), transforms.ToTensor()]))
    gray, _ = stack("L", transforms.Compose([transforms.Resize(20), transforms.CenterCrop(16), transforms.ToTensor()]))
    np.savez_compressed(os.path.join(here, "torchvision.npz"), rgb_resize_crop=rgb.astype(np.float32),
                        gray_resize_crop=gray.astype(np.float32), labels=labels.astype(np.int64))
    print("wrote", rgb.shape, gray.shape, labels)


if __name__ == "__main__":
    save_all()
    reference()
