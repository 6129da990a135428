"""The built-in templates: ready-made projects that ship in ``resources/templates``.

Each template is one project file, ``<name>.json``; the list is whatever files are
there, so adding a template means adding a file (``resources/templates/
make_templates.py`` builds the shipped ones). They are listed in the order a
course meets them, from the perceptron to localization, then the full-size networks of the
papers (AlexNet to U-Net), then any others by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import ProjectError
from engine.project import Project, load_project

__all__ = ["FULL_SIZE", "TEACHING_ORDER", "TEMPLATE_DIR", "TemplateInfo", "list_templates", "load_template"]

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "resources" / "templates"

#: The full-size networks of the papers and torchvision (ImageNet-size inputs, millions of weights):
#: they train on a person's own data, and the tests measure them apart from the small ones.
FULL_SIZE = (
    "alexnet",
    "vgg16",
    "googlenet",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "densenet121",
    "efficientnet_b0",
    "unet_paper",
)

#: Where the known templates sort; any other template follows, alphabetically.
TEACHING_ORDER = (
    "perceptron",
    "mlp",
    "universal_approximator",
    "linear_classifier",
    "handcrafted_filters",
    "lenet5",
    "vgg",
    "nin",
    "resnet",
    "inception",
    "mobilenet",
    "unet",
    "localization",
) + FULL_SIZE


@dataclass(frozen=True)
class TemplateInfo:
    """What a template menu shows: file stem, title, one-line description, and the file.

    ``project`` is the template as read for the list (a gallery draws its miniature from it, so no file
    is read twice); :func:`load_template` gives a fresh copy to edit.
    """

    name: str
    title: str
    description: str
    path: Path
    project: Project | None = field(default=None, repr=False, compare=False)


def _paths(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    rank = {name: i for i, name in enumerate(TEACHING_ORDER)}
    found = [p for p in directory.glob("*.json") if p.is_file()]
    return sorted(found, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


def list_templates(directory: Path | None = None) -> list[TemplateInfo]:
    """Every template in ``directory`` (default :data:`TEMPLATE_DIR`), in teaching order.

    Raises :class:`ProjectError` naming the file if a template does not load.
    """
    infos = []
    for path in _paths(directory or TEMPLATE_DIR):
        project = load_project(path)
        infos.append(TemplateInfo(path.stem, project.name, project.description, path, project))
    return infos


def load_template(name: str, directory: Path | None = None) -> Project:
    """A fresh :class:`Project` from template ``name`` (its file stem).

    Raises :class:`ProjectError` listing the known names when there is no such template.
    """
    paths = {p.stem: p for p in _paths(directory or TEMPLATE_DIR)}
    if name not in paths:
        known = ", ".join(paths) or "none are installed"
        raise ProjectError(f"there is no template called {name!r} (templates: {known})")
    return load_project(paths[name])
