"""Data a person brings as a folder of images, one subfolder per class (the subfolder's name is the class).

Every problem is a :class:`DataError` that names the folder or image at fault and says what to
do. What can be worked around (a corrupt image, images of mixed sizes, a pipe among the
images) is, and is noted in ``Dataset.warnings``. Only regular files are opened, and an
image's declared size is checked before it is decoded (:func:`engine.userfiles.read_image`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from engine.data.base import (
    DataError,
    Dataset,
    FileRefused,
    check_memory,
    labels_and_binary,
    open_regular,
    os_reason,
    rgb_or_gray_shape,
)
from engine.userfiles import MAX_IMAGE_PIXELS, ImageTooLarge, UnreadableImage, read_image

__all__ = ["IMAGE_EXTENSIONS", "MAX_IMAGE_PIXELS", "FolderListing", "decode_image", "list_image_folder", "load_image_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _need_pillow() -> None:
    """Refuse at once, before any file is listed, where the Pillow package that decodes images is missing."""
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise DataError("reading an image folder needs the Pillow package: pip install pillow") from None


def _listing(folder: Path, what: str, not_a_folder: str) -> list[tuple[str, str]]:
    """(name, kind) of the visible entries of ``folder``, sorted by name.

    ``kind`` is "dir", "file" or "other" (a pipe, socket, device or broken link). A folder that
    cannot be listed is a DataError naming it; ``not_a_folder`` is the message when it is a file.
    """
    out = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                kind = "dir" if entry.is_dir() else "file" if entry.is_file() else "other"
                out.append((entry.name, kind))
    except FileNotFoundError:
        raise DataError(f"{what} {folder} does not exist") from None
    except NotADirectoryError:
        raise DataError(not_a_folder) from None
    except PermissionError:
        raise DataError(
            f"{what} {folder} cannot be read (permission denied): allow reading it, "
            "or copy the images to a folder you can read"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{what} {folder} cannot be read ({os_reason(exc)})") from None
    return sorted(out)


def _class_files(class_dir: Path, warnings: list[str]) -> list[Path]:
    """The image files of one class folder; other entries are noted in ``warnings``."""
    entries = _listing(class_dir, "class folder", f"class folder {class_dir} is not a folder")
    files = [class_dir / name for name, kind in entries if kind == "file" and Path(name).suffix.lower() in IMAGE_EXTENSIONS]
    others = [name for name, kind in entries if kind == "file" and Path(name).suffix.lower() not in IMAGE_EXTENSIONS]
    odd = [name for name, kind in entries if kind == "other"]
    if odd:
        warnings.append(
            f"skipped {len(odd)} entry(ies) in {class_dir.name}/ that are not regular files "
            f"(pipes, sockets, devices or broken links), such as {odd[0]}"
        )
    if not files:
        raise DataError(f"class folder {class_dir} is empty: it holds no PNG or JPEG images")
    if others:
        warnings.append(f"ignored {len(others)} file(s) in {class_dir.name}/ that are not images, such as {others[0]}")
    return files


def _too_many_pixels(path: Path, exc: ImageTooLarge) -> str:
    if exc.size is not None:
        what = f"{exc.size[0]}×{exc.size[1]} pixels ({exc.pixels / 1e6:,.0f} megapixels)"
    elif exc.pixels is not None:
        what = f"{exc.pixels / 1e6:,.0f} megapixels"
    else:
        what = "far larger"
    return (
        f"image {path} is {what}, more than the {MAX_IMAGE_PIXELS // 1_000_000} megapixels Net Designer reads, "
        "so it was not decoded: shrink it, or take it out of the folder"
    )


def _read_image(f: BinaryIO, path: Path, mode: str, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels of one image in [0, 1], resized to ``size``, and its original size; too large a one is a DataError."""
    try:
        return read_image(f, mode, size)
    except ImageTooLarge as exc:
        raise DataError(_too_many_pixels(path, exc)) from None


@dataclass(frozen=True)
class FolderListing:
    """An image folder's files in order (class by class, each sorted by name) with their class indices,
    listed without decoding a pixel: the in-memory loader and the streaming reader share it, so a
    sample's index means the same file on both paths."""

    folder: Path
    classes: list[str]
    files: list[Path]
    labels: np.ndarray  # (N,) int64
    mode: str  # "L" or "RGB"
    chw: tuple[int, int, int]
    warnings: list[str]

    @property
    def sample_bytes(self) -> int:
        c, h, w = self.chw
        return c * h * w * 4


def list_image_folder(folder: Path, input_shape: tuple[int, ...], image_size: int | None = None) -> FolderListing:
    """The images of ``folder`` (one subfolder per class) and the pixel layout the Input asks of them."""
    entries = _listing(
        folder,
        "image folder",
        f"{folder} is a file: an image folder is a folder with one subfolder of images per class",
    )
    classes = [name for name, kind in entries if kind == "dir"]
    if not classes:
        raise DataError(
            f"image folder {folder} has no class subfolders: put each class's images in a subfolder "
            f"named after the class, such as {folder / 'cat'}"
        )
    if len(classes) < 2:
        raise DataError(f"image folder {folder} has one class subfolder ({classes[0]}): a classifier needs two or more")
    _need_pillow()
    c, h, w = rgb_or_gray_shape(input_shape, image_size, "an image folder")
    warnings: list[str] = []
    per_class = [_class_files(folder / name, warnings) for name in classes]
    files = [path for paths in per_class for path in paths]
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), [len(paths) for paths in per_class])
    return FolderListing(folder, classes, files, labels, "L" if c == 1 else "RGB", (c, h, w), warnings)


def decode_image(path: Path, mode: str, chw: tuple[int, int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as (C, H, W) float32 in [0, 1] and its original (width, height).

    Raises:
        FileRefused: it cannot be opened (``reason`` says why).
        UnreadableImage: it is damaged, or not an image.
        DataError: it has more pixels than are read.
    """
    c, h, w = chw
    with open_regular(path, "image") as f:
        pixels, original = _read_image(f, path, mode, (w, h))
    return (pixels[None] if c == 1 else pixels.transpose(2, 0, 1)), original


def _decoded(path: Path, label: str, mode: str, chw: tuple[int, int, int], warnings: list[str]) -> Any:
    """``decode_image`` of ``path``, or None (noted in ``warnings``) when it cannot be read."""
    try:
        return decode_image(path, mode, chw)
    except FileRefused as exc:
        warnings.append(f"skipped {label}: {exc.reason}")
    except UnreadableImage:
        warnings.append(f"skipped {label}: not a readable image (damaged, or not really a {path.suffix[1:].upper()} file)")
    return None


def load_image_folder(folder: Path, input_shape: tuple[int, ...], image_size: int | None = None) -> Dataset:
    """Images in one subfolder per class (the subfolder's name is the class), resized to the Input."""
    found = list_image_folder(folder, input_shape, image_size)
    c, h, w = found.chw
    total = len(found.files)
    check_memory(
        total * found.sample_bytes,
        f"image folder {folder}: loading {total:,} images of {c}×{h}×{w}",
        "use a smaller image size or fewer images",
    )
    # NOTE: filled in place, so loading takes the memory of the images once, not once per copy.
    x = np.empty((total, c, h, w), np.float32)
    labels = np.empty(total, np.int64)
    warnings = list(found.warnings)
    sizes: dict[tuple[int, int], int] = {}
    read = 0
    for path, k in zip(found.files, found.labels.tolist()):
        decoded = _decoded(path, f"{found.classes[k]}/{path.name}", found.mode, found.chw, warnings)
        if decoded is None:
            continue
        x[read], original = decoded
        labels[read] = k
        sizes[original] = sizes.get(original, 0) + 1
        read += 1
    have = np.bincount(labels[:read], minlength=len(found.classes))
    for k in np.flatnonzero(have == 0):
        listed = int((found.labels == k).sum())
        raise DataError(
            f"class folder {folder / found.classes[k]} has no readable images: all {listed} failed to load"
        )
    if len(sizes) > 1:
        common = ", ".join(f"{a}×{b}" for a, b in sorted(sizes, key=sizes.get, reverse=True)[:3])
        warnings.append(f"the images come in {len(sizes)} sizes ({common}, ...); each was resized to {w}×{h}")
    # NOTE: c·h·w equals the Input's size by construction, so a vector Input takes the image flattened.
    xt = torch.from_numpy(x[:read]).reshape(read, *input_shape)
    return Dataset(xt, labels_and_binary(labels[:read], len(found.classes)), found.classes, folder.name, warnings)
