"""The data layer of training: load, split, normalize, augment and preview data sets.

A data set is one :class:`Dataset` of plain tensors in memory, unless it is a person's files larger
than ``data.memory_budget_gib``: then :func:`load_for_training` gives a :class:`StreamDataset`
that splits alike and is read a batch at a time (:mod:`engine.data.streaming`)::

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

import importlib

#: name -> the module that defines it. NOTE: imported when first asked for (PEP 562), so that
#: importing a torch-free part (engine.data.basics, engine.data.sets) does not import PyTorch.
_HOMES = {
    "AUGMENT_OPTIONS": "engine.data.augment",
    "Augmenter": "engine.data.augment",
    "Mix": "engine.data.augment",
    "mixed_loss": "engine.data.augment",
    "TARGET_KEYS": "engine.data.base",
    "Dataset": "engine.data.base",
    "DataError": "engine.data.basics",
    "DATASET_INFO": "engine.data.sets",
    "TASK_TARGETS": "engine.data.sets",
    "check_task": "engine.data.loading",
    "load_dataset": "engine.data.loading",
    "Normalizer": "engine.data.normalize",
    "preview": "engine.data.preview",
    "Splits": "engine.data.splits",
    "StreamDataset": "engine.data.streaming",
    "load_for_training": "engine.data.streaming",
    "kfold": "engine.data.splits",
    "split_dataset": "engine.data.splits",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'engine.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
