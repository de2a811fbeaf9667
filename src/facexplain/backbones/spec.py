"""``BackboneSpec``: everything needed to build, feed and score one face model (a row of data).

Why its own module: the built-in models (``backbones.builtin``), user models
(``backbones.user``) and the registry all make or read these rows; with the class in the
registry, the registry and the user models imported each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from facexplain.align.templates import TEMPLATES, Template
from facexplain.assets import AssetFile, DerivedFile
from facexplain.errors import InvalidArgument


@dataclass(frozen=True)
class BackboneSpec:
    """Everything needed to build, feed and score one pretrained face model."""

    name: str
    description: str
    template: str
    embedding_dim: int
    feature_nodes: tuple[str, ...]
    asset_names: tuple[str, ...]
    loader: str
    threshold: float
    threshold_source: str
    # user models (``backbones.user``): a crop size other than the template's, five custom
    # points instead of a named template, whether the row came from the user, and the warning
    # every verdict carries (a model registered with --force despite failing the model check)
    size: int = 0
    points: tuple[tuple[float, float], ...] = ()
    user: bool = False
    warning: str = ""
    # built-ins: files fetched at set-up (pinned sha256), files built from them (in order),
    # whether set-up exports a forward-only onnxruntime graph, and the part-filter head's
    # (early, middle, late) feature nodes
    files: tuple[AssetFile, ...] = ()
    derived: tuple[DerivedFile, ...] = ()
    runtime: bool = False
    part_layers: tuple[str, ...] = ()

    def load_files(self) -> tuple[AssetFile | str, ...]:
        """What must be present to load the model: its fetched files by their pinned sha256,
        the rest (derived files) by name."""
        fetched = {f.name: f for f in self.files}
        return tuple(fetched.get(name, name) for name in self.asset_names)

    @property
    def input_size(self) -> int:
        return self.alignment.size

    @property
    def alignment(self) -> Template:
        if self.points:
            return Template(f"{self.name}-points", self.size, self.points)
        base = TEMPLATES[self.template]
        if not self.size or self.size == base.size:
            return base
        k = self.size / base.size
        return Template(f"{base.name}@{self.size}", self.size,
                        tuple((x * k, y * k) for x, y in base.points))

    @property
    def last_spatial_node(self) -> str:
        if not self.feature_nodes:
            raise InvalidArgument(f"backbone '{self.name}' names no feature maps; register it "
                                  "with --feature-nodes to use map-based methods")
        return self.feature_nodes[-1]
