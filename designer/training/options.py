"""Names and explanations for the training setup form, in a learner's words."""

from __future__ import annotations

from engine.config import REGRESSION_FUNCTIONS

__all__ = [
    "AUGMENT_FIELDS",
    "DATASET_TITLES",
    "DATA_FILES",
    "DEVICE_TITLES",
    "FUNCTION_TITLES",
    "GENERATED",
    "IMAGE_AUGMENTS",
    "IMAGE_DATASETS",
    "KNOWN_SIZES",
    "OPTIMIZER_TITLES",
    "SCHEDULE_TITLES",
    "TASK_TITLES",
    "TIPS",
]

DATASET_TITLES = {
    "spiral": "Spiral (2-D points)",
    "xor": "XOR (2-D points)",
    "circles": "Circles (2-D points)",
    "gaussians": "Two blobs (2-D points)",
    "regression1d": "1-D curve (regression)",
    "digits": "Handwritten digits (8×8)",
    "iris": "Iris flowers (table)",
    "wine": "Wine (table)",
    "breast_cancer": "Breast cancer (table)",
    "shapes": "Shapes (images, masks, boxes)",
    "image_folder": "My images (folder)…",
    "csv": "My table (CSV file)…",
    "npz": "My arrays (.npz file)…",
}
GENERATED = ("spiral", "xor", "circles", "gaussians", "regression1d", "shapes")
DATA_FILES = ("image_folder", "csv", "npz")
#: the data sets made of pictures (an .npz file may hold either)
IMAGE_DATASETS = ("digits", "shapes", "image_folder")
KNOWN_SIZES = {"digits": 1797, "iris": 150, "wine": 178, "breast_cancer": 569}

#: value -> (shown text, tooltip)
TASK_TITLES = {
    "classification": ("Classification", "One class per sample (which digit is this?)."),
    "binary": ("Binary", "A yes-or-no answer per output (is this tumour malignant?)."),
    "regression": ("Regression", "Predict numbers (the height of a curve at x)."),
    "segmentation": ("Segmentation", "A class for every pixel (which pixels belong to the shape?)."),
    "localization": ("Localization", "A class and a bounding box per image (what is it, and where?)."),
}

#: value -> (shown text, tooltip)
OPTIMIZER_TITLES = {
    "sgd": ("SGD (with momentum)", "Stochastic gradient descent: step against the gradient of each batch. "
            "Momentum keeps part of the last step, so it rolls through small bumps."),
    "adam": ("Adam", "Adapts a step size for every weight from running averages of its gradients; a good "
             "first choice that needs little tuning."),
    "rmsprop": ("RMSprop", "Divides each weight's step by a running average of its squared gradients, so "
                "steep directions take smaller steps."),
    "adagrad": ("Adagrad", "Gives rarely-updated weights bigger steps; steps shrink as gradients add up, "
                "so it can stop learning on long runs."),
}
SCHEDULE_TITLES = {
    "none": ("Constant", "Keep the learning rate the same for the whole run."),
    "step": ("Step decay", "Multiply the learning rate by the factor every 'step size' epochs."),
    "cosine": ("Cosine", "Lower the learning rate smoothly along a half cosine, to almost zero at the last epoch."),
    "plateau": ("Reduce on plateau", "Multiply the learning rate by the factor when the validation loss stops "
                "improving (after a third of 'step size' epochs without progress)."),
}
DEVICE_TITLES = {
    "auto": ("Automatic", "Train on the GPU (CUDA) when this computer has one, else on the CPU."),
    "cpu": ("CPU", "Always train on the processor: slower for big networks, but works everywhere."),
    "cuda": ("GPU (CUDA)", "Train on the NVIDIA GPU; training fails with a message if there is none."),
}

#: option -> (label, largest value or None for on/off, spin step, tooltip)
AUGMENT_FIELDS = {
    "flip": ("Mirror left-right:", None, 0, "Mirror each training image left-right with probability 1/2. "
             "Good for photos; wrong for digits and text, whose mirror images mean something else."),
    "vflip": ("Mirror top-bottom:", None, 0, "Turn each training image upside down with probability 1/2 (a "
              "mask or box moves with it). Good for cells and satellite pictures, which have no up; wrong "
              "for photos of upright things."),
    "shift": ("Shift:", 0.5, 0.05, "Move images by up to this fraction of their size, so the network "
              "does not rely on where things are."),
    "rotation": ("Rotation (°):", 180.0, 5.0, "Turn images by up to this many degrees either way."),
    "scale": ("Zoom:", 0.9, 0.05, "Zoom in or out by up to this fraction (0.1: from 90 % to 110 %)."),
    "elastic": ("Elastic:", 0.1, 0.01, "Bend each image smoothly, like a rubber sheet: 3 × 3 points move at "
                "random by this fraction of the image size (standard deviation) and the pixels between follow, "
                "masks too. The U-Net paper used it to learn from few images (try 0.02)."),
    "noise": ("Noise:", 10.0, 0.05, "Add random noise of this standard deviation to every input value, so "
              "small disturbances do not change the answer."),
    "brightness": ("Brightness:", 10.0, 0.05, "Brighten or darken whole images by up to this much."),
    "contrast": ("Contrast:", 0.99, 0.05, "Raise or lower the contrast by up to this factor (0.2: 80 % to 120 %)."),
    "cutout": ("Cutout:", 0.9, 0.05, "Blank out one random square of each image, its side this fraction of "
               "the image's (0.25 is typical), so the network learns from every part of the object, not one "
               "telltale patch. Masks and boxes are left as they are."),
    "mixup": ("Mixup:", 10.0, 0.1, "Blend pairs of training samples and their targets (alpha of the mixing "
              "weight; 0.2 is typical). Smooths the decision boundary."),
}

#: the augmentations that change pictures: they mean nothing for points or table rows
IMAGE_AUGMENTS = ("flip", "vflip", "shift", "rotation", "scale", "elastic", "brightness", "contrast", "cutout")

#: the curves of the 1-D regression set (engine.config.REGRESSION_FUNCTIONS), as the Training setup names them
FUNCTION_TITLES = {"sin": "sin x", "step": "step at 0", "abs": "|x|", "square": "x²", "sawtooth": "sawtooth"}
assert tuple(FUNCTION_TITLES) == REGRESSION_FUNCTIONS, "one title per function the engine draws"

TIPS = {
    "augment": "Random changes to each training batch: the network sees new variants every epoch and "
               "overfits less. Validation and test data are never changed.",
    "data.dataset": "What the network learns from: a built-in set, or your own images, table or arrays.",
    "data.path": "Your data: a folder with one subfolder per class of images, a CSV file or an .npz file. "
                 "A path inside the project's folder is stored relative to it.",
    "data.feature_columns": "Which CSV columns are the inputs, separated by commas. Empty: every column but the target.",
    "data.target_column": "The CSV column to predict. Empty: the last column.",
    "data.task": "What the network should predict; the output block must match it.",
    "data.samples": "How many samples to generate.",
    "data.noise": "How much random noise the generated samples carry: more noise makes the task harder.",
    "data.function": "The curve the 1-D regression set samples, for a network to fit: one hidden layer of enough "
                     "units can fit any of them (the universal approximation theorem); the step and the "
                     "sawtooth, which jump, need the most.",
    "data.classes": "How many arms (classes) the spiral has.",
    "data.image_size": "Resize images to this side length before they meet the Input block. "
                       "'from the Input' uses the Input block's size.",
    "data.val_fraction": "The part of the data held back to check the network after each epoch. The network "
                         "never trains on it, so it shows whether learning generalizes (or overfits).",
    "data.test_fraction": "The part of the data kept aside until the very end, for one honest final score.",
    "data.memory_budget_gib": "Files whose samples take more memory than this are read from disk a batch at a "
                              "time while training (slower per sample, but any size fits); smaller ones are "
                              "loaded whole. 'always stream' reads every file from disk.",
    "data.seed": "Fixes which samples land in training, validation and test. The same seed gives the same split.",
    "data.normalize": "Shift and scale the inputs to mean 0 and standard deviation 1 (measured on the "
                      "training part only). Training is faster and steadier.",
    "training.loss": "What training minimizes. Each output block brings its own loss.",
    "training.optimizer": "How the weights move downhill on the loss.",
    "training.lr": "How big each step of the optimizer is. Too big and the loss jumps or becomes NaN; "
                   "too small and learning crawls. Type 0.001 or 1e-3.",
    "training.momentum": "For SGD: how much of the previous step carries over (0.9 is usual; 0 is plain SGD).",
    "training.nesterov": "For SGD with momentum: look ahead along the momentum before computing the "
                         "gradient. Often a little faster.",
    "training.batch_size": "Samples per weight update. 1 is online learning; the whole training set is "
                           "(full) batch learning; anything in between is mini-batch. With BatchNorm in the "
                           "network, a last batch of a single sample is left out of each epoch (BatchNorm cannot "
                           "normalize one sample); the shuffle picks another one each epoch.",
    "training.epochs": "How many times training goes through all the training data.",
    "training.schedule": "How the learning rate changes during the run.",
    "training.step_size": "Step decay: epochs between cuts. Reduce on plateau: waits a third of this many "
                          "epochs without improvement before cutting.",
    "training.gamma": "What the learning rate is multiplied by at each cut (0.1 divides it by ten).",
    "training.weight_decay": "Pulls every weight a little towards zero at each step (L2 regularization), "
                             "which keeps the network simpler and reduces overfitting. 0 is off; try 1e-4.",
    "training.early_stopping_patience": "Stop when the validation loss has not improved for this many "
                                        "epochs. 'off' always trains every epoch.",
    "training.restore_best": "When early stopping ends the run (or you stop it), go back to the weights of "
                             "the epoch with the lowest validation loss.",
    "training.seed": "Fixes the random start weights, shuffling and augmentation, so a run can be repeated.",
    "training.device": "Where the arithmetic happens.",
    "training.mixed_precision": "On a CUDA GPU, compute in 16-bit floats where it is safe: faster and half "
                                "the memory. Ignored on the CPU.",
    "probes.enabled": "Compute the Insight views (activations, filters, class maps, gradient flow, decisions) "
                      "while the network trains. Off, training runs a few percent faster and Insight stays empty.",
    "probes.every_batches": "How often the live views are computed: after this many batches.",
    "probes.every_seconds": "Also compute the live views when this much time has passed, however few batches "
                            "ran (useful for slow, large networks). 'off' uses the batch count only.",
    "probes.cam_method": "How the class maps are made. Grad-CAM works for any convolutional network; CAM "
                         "needs the network to end GlobalAvgPool (or GlobalMaxPool) → Dense.",
    "probes.probe_samples": "How many fixed validation images the live views follow.",
}

CAM_TITLES = {
    "gradcam": ("Grad-CAM", "Weighs a block's feature maps by the class score's gradient: any convolutional network"),
    "cam": ("CAM", "Weighs the last feature maps by the Dense head's weights: networks ending "
                   "GlobalAvgPool or GlobalMaxPool → Dense"),
    "off": ("Off", "No class maps"),
}
