"""Live insight into a network while it trains, and on demand: probes that return numpy arrays.

Probes run on a detached copy of the training model (:mod:`engine.probes.snapshot`), so they
never change its mode, weights, gradients or hooks; the window only draws what they return.

* :mod:`~engine.probes.runner`: :class:`ProbeRunner`, the set the training worker computes on
  a schedule (activations, filters, CAM / Grad-CAM, gradient flow, histograms) and the
  decision views for an epoch's end.
* :mod:`~engine.probes.cam`: CAM, Grad-CAM, the heat colour ramp and overlays.
* :mod:`~engine.probes.views`: activations, filters, gradient statistics, histograms, decision
  regions, fitted curves, confusion matrices, hardest samples, predicted masks and boxes.
* :mod:`~engine.probes.ondemand`: maximally activating patches and activation maximization.
* :mod:`~engine.probes.explore`: those two for a finished run, rebuilt from its snapshot and weights.
* :mod:`~engine.probes.explain`: the headless overlay PNG and raw map of one prediction.

NOTE: the functions ``cam`` and ``explain`` are not re-exported here, so that
``engine.probes.cam`` and ``engine.probes.explain`` keep naming their modules.
"""

from engine.probes.base import ProbeError, Tap
from engine.probes.cam import default_cam_layer, grad_cam, overlay, save_png
from engine.probes.ondemand import activation_maximization, max_activating_patches
from engine.probes.runner import ProbeRunner, ProbeSettings
from engine.probes.snapshot import detached_copy, refresh

__all__ = [
    "ProbeError",
    "ProbeRunner",
    "ProbeSettings",
    "Tap",
    "activation_maximization",
    "default_cam_layer",
    "detached_copy",
    "grad_cam",
    "max_activating_patches",
    "overlay",
    "refresh",
    "save_png",
]
