"""Image folders: one sub-folder per class, as torchvision's ``ImageFolder`` reads them.

Class names are the sorted sub-folder names (hidden ones, starting with ``.``, are skipped); a
class's images are the files with an image extension (``IMAGE_EXTENSIONS``, any case) anywhere
below its folder, in sorted path order. A symbolic link inside the folder is an error (the folder
itself may be one), and so is anything named like an image that is not a regular file (a FIFO, a
socket, a device: reading one could wait forever), named in the error before any image is opened.
Samples are ordered by class, then path: a label file for ``--labels`` lists one label per image in
that order. Every image is decoded once, at load time, resized to ``image_size x image_size``
(option ``image_size``, ``--image-size``, default ``DEFAULT_IMAGE_SIZE``; the aspect ratio is not
kept) and its pixels (0-255) divided by 255 (``PIXEL_SCALE``, recorded with a trained model). The
decoded array, ``n x 3 x size x size`` float32 at most, may hold ``MAX_DATA_VALUES`` values: more is
refused before decoding. If every image is grayscale the data has one channel, else every image is
converted to RGB (three channels).
"""

from __future__ import annotations

import os

import numpy as np

from automl_noisy.data.limits import MAX_DATA_VALUES, check_values
from automl_noisy.data.preprocessing import PIXEL_SCALE
from automl_noisy.data.sources.base import RawData, first_line, int_option, special_kind
from automl_noisy.data.spec import DataSpec
from automl_noisy.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
DEFAULT_IMAGE_SIZE = 32
#: PIL modes of single-channel images.
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def image_files(folder: str) -> list[str]:
    """The image files anywhere below ``folder``, in sorted path order (a symbolic link, or an entry
    named like an image that is not a regular file, is an error)."""
    found = []
    for parent, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            refuse_link(os.path.join(parent, name))
        dirs.sort()
        images = [os.path.join(parent, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
        for path in images:
            refuse_special(path)
        found += images
    return found


def refuse_link(path: str) -> None:
    """Links inside an image folder are not followed: one may loop (``loop -> ..`` multiplies the
    images) or lead out of the folder."""
    if os.path.islink(path):
        raise UserError(f"image folder entry {path} is a symbolic link (to {os.readlink(path)}); links are not "
                        "followed: copy the images in, or remove the link")


def refuse_special(path: str) -> None:
    """An image folder entry named like an image must be a regular file: a FIFO would block its
    reader until something writes to it, a device may never end."""
    try:
        kind = special_kind(path, follow_links=False)
    except OSError as exc:
        raise UserError(f"cannot read image file {path}: {first_line(exc)}") from None
    if kind is not None:
        raise UserError(f"image folder entry {path} is {kind}, not an image file; remove it or rename it")


def check_decoded_size(count: int, size: int, where: str) -> None:
    """Refuse, before decoding, ``count`` images at ``size`` x ``size`` whose float32 array (three
    channels at most) would exceed ``MAX_DATA_VALUES``."""
    check_values(count * 3 * size * size, MAX_DATA_VALUES,
                 f"{count} images of {where} decoded at {size}x{size} pixels (3 channels)",
                 "use a smaller --image-size or fewer images")


def scan_folder(root: str) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    """Class names, image paths and their class ids of an image-folder tree."""
    for entry in os.scandir(root):
        refuse_link(entry.path)
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    example = os.path.join(root, "cat", "1.png")
    if not classes:
        raise UserError(f"image folder {root} has no class folders; put each class's images in a "
                        f"sub-folder named after the class, e.g. {example}")
    if len(classes) < 2:
        raise UserError(f"image folder {root} has a single class folder {classes[0]!r}; a classifier needs "
                        f"at least two")
    paths: list[str] = []
    labels: list[int] = []
    for k, name in enumerate(classes):
        files = image_files(os.path.join(root, name))
        if not files:
            raise UserError(f"class folder {os.path.join(root, name)} has no images "
                            f"({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}); add images or remove the folder")
        paths += files
        labels += [k] * len(files)
    return tuple(classes), paths, np.asarray(labels, dtype=np.int64)


def decode_image(path: str, size: int, channels: int | None = None) -> tuple[np.ndarray, bool]:
    """One image as uint8 ``(size, size)`` (grayscale, True) or ``(size, size, 3)`` (colour, False);
    ``channels`` 1 or 3 converts it to that many (the flag then says whether it was grayscale)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.load()
                gray = img.mode in GRAY_MODES
                if img.mode in ("I", "F") or img.mode.startswith("I;16"):
                    pixels = np.asarray(img, dtype=np.float64)
                    peak = 65535.0 if pixels.max(initial=0) > 255 else 255.0
                    img = Image.fromarray(np.clip(pixels / peak * 255, 0, 255).astype(np.uint8), "L")
                else:
                    img = img.convert("L" if gray else "RGB")
                if channels is not None:
                    img = img.convert("L" if channels == 1 else "RGB")
                img = img.resize((size, size), Image.Resampling.BILINEAR)
                return np.asarray(img, dtype=np.uint8), gray
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UserError(f"cannot read image file {path}: {first_line(exc)}; replace or remove it") from None


def load_folder_source(path: str, spec: DataSpec) -> RawData:
    """An image-folder tree (see the module docstring), decoded into ``(n, C, size, size)`` floats."""
    if not path:
        raise UserError("source folder: needs a folder path, e.g. --data folder:images/")
    if not os.path.exists(path):
        raise UserError(f"image folder not found: {path}")
    if not os.path.isdir(path):
        raise UserError(f"data path {path} is not a folder; give a folder with one sub-folder per class")
    size = int_option("folder", spec.options, "image_size", DEFAULT_IMAGE_SIZE, 2)
    class_names, paths, y = scan_folder(path)
    check_decoded_size(len(paths), size, path)
    decoded = [decode_image(p, size) for p in paths]
    if all(gray for _, gray in decoded):
        x = np.stack([pixels for pixels, _ in decoded])[:, None]
    else:
        x = np.stack([np.repeat(p[..., None], 3, axis=2) if gray else p for p, gray in decoded])
        x = x.transpose(0, 3, 1, 2)
    return RawData(PIXEL_SCALE.apply(x), y, class_names, False, image_size=size, scale=PIXEL_SCALE)
