"""The data layer of training: load, split, normalize, augment and preview data sets.

Data sets are small, so each is one :class:`Dataset` of plain tensors in memory::

    ds = load_dataset(cfg, input_shape=(1, 32, 32), base_dir=project_folder)
    train, val, test = split_dataset(ds, cfg.val_fraction, cfg.test_fraction, cfg.seed)
    norm = Normalizer.fit(train)                      # training statistics only
    train, val, test = (norm.apply(s) for s in (train, val, test))
    x, targets, mix = Augmenter(cfg.augment)(xb, tb, generator)   # per training batch

Targets are named after what the output heads train against: ``label`` (class output),
``binary`` (binary output), ``value`` (regression output), ``mask`` (segmentation output;
for the shapes data set 4 classes, 0 = background) and ``box`` (box output: x, y of the
top-left corner, width, height, as fractions of the image).
"""

from engine.data.augment import AUGMENT_OPTIONS, Augmenter, Mix, mixed_loss
from engine.data.base import TARGET_KEYS, DataError, Dataset
from engine.data.loading import DATASET_INFO, TASK_TARGETS, check_task, load_dataset
from engine.data.normalize import Normalizer
from engine.data.preview import preview
from engine.data.splits import Splits, kfold, split_dataset

__all__ = [
    "AUGMENT_OPTIONS",
    "DATASET_INFO",
    "TARGET_KEYS",
    "TASK_TARGETS",
    "Augmenter",
    "DataError",
    "Dataset",
    "Mix",
    "Normalizer",
    "Splits",
    "check_task",
    "kfold",
    "load_dataset",
    "mixed_loss",
    "preview",
    "split_dataset",
]
