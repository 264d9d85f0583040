"""The user's own images: a folder with one sub-folder per class (the torchvision ImageFolder
layout). Decoding (PNG, JPEG, PGM/PPM, BMP, GIF, TIFF, WebP) is Pillow's, imported only here;
everything after decoding is NumPy.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from engine.data.base import Dataset, DatasetSpec, check_elements, user_file
from engine.errors import DataError
from engine.settings import Opt

IMAGE_EXTS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".pgm",
    ".ppm",
    ".pbm",
    ".pnm",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
)
MAX_IMAGE_PIXELS = 50_000_000  # refuse decompression bombs before decoding
MAX_IMAGES = 1_000_000

IMAGE_FOLDER_OPTIONS = {
    "path": Opt("path", doc="a folder with one sub-folder of images per class"),
    "size": Opt(
        "size",
        default=None,
        nullable=True,
        max=1024,
        doc="[H, W]: resize every image (bilinear); default: all must share one size",
    ),
    "grayscale": Opt("bool", default=True, doc="one channel (else three: RGB)"),
}


def _pillow():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency in pyproject.toml
        raise DataError(
            "reading image folders needs the Pillow package: pip install pillow"
        ) from None
    return Image


def _pixels(Image, im, size: list[int] | None, grayscale: bool, path: Path) -> np.ndarray:
    """A decoded Pillow image -> (C, H, W) float32 in [0, 1]."""
    if im.width * im.height > MAX_IMAGE_PIXELS:
        raise DataError(
            f"is {im.width}x{im.height} pixels, more than the limit of {MAX_IMAGE_PIXELS:,}",
            file=str(path),
        )
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        scale = 1.0 if im.mode == "F" else 1.0 / 65535.0
        f = Image.fromarray(np.asarray(im, dtype=np.float32) * np.float32(scale))
        if size:
            f = f.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        out = np.asarray(f, dtype=np.float32)[None]
        return out if grayscale else np.repeat(out, 3, axis=0)
    im = im.convert("L" if grayscale else "RGB")
    if size:
        im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    out = np.asarray(im, dtype=np.float32) / 255.0
    return out[None] if grayscale else out.transpose(2, 0, 1)


def read_image(path: Path, size: list[int] | None, grayscale: bool) -> np.ndarray:
    """One image file -> (C, H, W) float32 in [0, 1] (C = 1 grayscale, else 3).

    8-bit images are scaled by 1/255, 16-bit ones by 1/65535, 32-bit float ones are taken as
    stored. With ``size`` the image is resized
    by Pillow's bilinear filter (which widens its support when shrinking, so large photos do not
    alias).
    """
    Image = _pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # metadata complaints; bad pixel data still raises
            with user_file(str(path), what="image file") as f, Image.open(f) as im:
                out = _pixels(Image, im, size, grayscale, path)
    except DataError:
        raise
    except Exception as e:  # Pillow's decoders raise many types on corrupt data (OSError,
        # ValueError, SyntaxError, EOFError, struct.error, DecompressionBombError ...): all of
        # them mean the same thing to the user.
        raise DataError(
            f"cannot be decoded as an image ({type(e).__name__}: {e})", file=str(path)
        ) from None
    if not np.all(np.isfinite(out)):
        raise DataError("has NaN or infinite pixel values", file=str(path))
    return np.ascontiguousarray(out)


def _list_classes(root: Path, path: str) -> list[tuple[str, list[Path]]]:
    try:
        if not root.is_dir():
            raise DataError(
                "is not a folder; image_folder needs a folder with one sub-folder "
                "of images per class",
                file=path,
            )
        folders = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        classes = []
        for d in folders:
            files = sorted(f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTS and f.is_file())
            if not files:
                raise DataError(
                    f"the class folder has no images ({', '.join(IMAGE_EXTS)})", file=str(d)
                )
            classes.append((d.name, files))
    except OSError as e:
        raise DataError(f"cannot list the folder ({e.strerror or e})", file=path) from None
    return classes


def load_image_folder(cfg: dict, rng: np.random.Generator) -> Dataset:
    """root/<class name>/<image files>: classes in sorted folder order, images in name order.

    Shapes: X (N, C, H, W) float32 in [0, 1], y (N,) int64.
    """
    path = cfg["path"]
    classes = _list_classes(Path(path).expanduser(), path)
    if len(classes) < 2:
        found = f"only the class folder {classes[0][0]!r}" if classes else "no class folders"
        raise DataError(
            f"has {found}; image_folder needs one sub-folder per class, at least 2", file=path
        )
    total = sum(len(files) for _, files in classes)
    if total > MAX_IMAGES:
        raise DataError(f"has {total:,} images, more than the limit of {MAX_IMAGES:,}", file=path)
    X, y, shape, first = None, [], None, None
    i = 0
    for label, (_, files) in enumerate(classes):
        for f in files:
            img = read_image(f, cfg["size"], cfg["grayscale"])
            if X is None:
                shape, first = img.shape, f
                check_elements(total * img.size, f"{total:,} images of {img.shape}", path)
                X = np.empty((total, *shape), dtype=np.float32)
            elif img.shape != shape:
                raise DataError(
                    f"is {img.shape[2]}x{img.shape[1]} but {first} is "
                    f"{shape[2]}x{shape[1]}; set the option 'size' to resize all "
                    f"images to one size",
                    file=str(f),
                )
            X[i] = img
            y.append(label)
            i += 1
    norm = "pixel / 255 to [0, 1] (16-bit: / 65535)"
    if cfg["size"]:
        norm += f"; resized to {cfg['size'][0]}x{cfg['size'][1]} (bilinear)"
    names = [name for name, _ in classes]
    return Dataset(
        X,
        np.array(y, dtype=np.int64),
        "classification",
        n_classes=len(names),
        class_names=names,
        name="image_folder",
        normalisation=norm,
        description=DATASETS_HERE["image_folder"].description,
        meta={"path": path, "counts": [len(files) for _, files in classes]},
    )


DATASETS_HERE: dict[str, DatasetSpec] = {
    "image_folder": DatasetSpec(
        "Your own images: a folder with one sub-folder per class (PNG, JPEG, PGM ...)",
        IMAGE_FOLDER_OPTIONS,
        load_image_folder,
    ),
}
