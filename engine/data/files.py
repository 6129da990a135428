"""Data a person brings: a folder of images per class, a CSV table, or a NumPy ``.npz`` file.

One module per source: :mod:`engine.data.folder`, :mod:`engine.data.csvfile` and
:mod:`engine.data.npzfile`. Each refuses a problem with a :class:`DataError` that names the
folder, file, row, column or array at fault and says what to do; only regular files are opened
(:mod:`engine.userfiles`), and sizes a file declares are checked before anything is decoded.
"""

from __future__ import annotations

from engine.data.csvfile import load_csv
from engine.data.folder import IMAGE_EXTENSIONS, MAX_IMAGE_PIXELS, load_image_folder
from engine.data.npzfile import load_npz

__all__ = ["IMAGE_EXTENSIONS", "MAX_IMAGE_PIXELS", "load_csv", "load_image_folder", "load_npz"]
