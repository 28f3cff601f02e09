"""Seeded synthetic brain-tumor MRI dataset in the BraTS 2018-21 folder layout.

It stands in for BRATS (which cannot be downloaded here).  Every subject is a
skull-stripped brain (grey matter rim, white matter, CSF with sulci and two lateral
ventricles) holding one tumor (edema around an enhancing rim around a necrotic
core), rendered as a FLAIR and a T1 volume with different tissue contrasts, partial
volume, texture, a per-modality bias field, Rician noise and an arbitrary scanner
gain.  Labels follow BraTS: 0 background/healthy, 1 necrotic core, 2 edema,
4 enhancing tumor.

Layout written by :func:`benchbias.data.synthetic_files.write_dataset`::

    out_dir/BraTS_Synth_000/BraTS_Synth_000_flair.nii.gz
    out_dir/BraTS_Synth_000/BraTS_Synth_000_t1.nii.gz
    out_dir/BraTS_Synth_000/BraTS_Synth_000_seg.nii.gz
    ...
    out_dir/synthetic.json      # written last: its presence means "complete"

Geometry is expressed in fractions of the volume shape, so other shapes work too;
the ranges were tuned for the default (64, 64, 40), z being the axial axis.  The
"kept slab" below means the axial slices whose brain covers > 30% of the slice, the
ones a benchmark keeps; the tumor's axial level is uniform over it, so tumor and
healthy slices come from the same levels and have the same brain area on average.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from benchbias.foundation.config import SynthSpec  # what to generate: a benchmark's dataset.synthetic

GENERATOR_VERSION: str = "2"
"""Bump whenever the generated data change, so cached datasets get rebuilt."""

LABEL_NECROSIS, LABEL_EDEMA, LABEL_ENHANCING = 1, 2, 4

# Tissue classes of the hard tissue map; BACKGROUND is outside the brain.
BACKGROUND, CSF, GM, WM, EDEMA, ENHANCING, NECROSIS = -1, 0, 1, 2, 3, 4, 5
# Mean intensity of each class (indexed by class) before texture, bias, noise, gain.
FLAIR_MEANS = np.array([0.08, 0.58, 0.45, 1.00, 0.78, 0.62], dtype=np.float32)
T1_MEANS = np.array([0.12, 0.55, 0.85, 0.58, 0.38, 0.15], dtype=np.float32)
PARTIAL_VOLUME_SIGMA = 0.7


def subject_id(index: int) -> str:
    """BraTS-style subject id, e.g. ``subject_id(3) == "BraTS_Synth_003"``."""
    return f"BraTS_Synth_{index:03d}"


# ----------------------------------------------------------------------------- geometry


class _Grid:
    """Broadcastable voxel coordinates (open grid, float32) of a volume or of a box inside it."""

    def __init__(self, shape: tuple[int, int, int], box: tuple[slice, ...] | None = None):
        box = box or tuple(slice(0, n) for n in shape)
        self.box = box
        self.shape = tuple(b.stop - b.start for b in box)
        self.x, self.y, self.z = (a.astype(np.float32) for a in np.ogrid[box])
        self.xy_scale = min(shape[:2]) / 64.0  # sizes below are tuned for 64 in-plane
        self.z_scale = shape[2] / 40.0
        self.volume_shape = shape

    def around(self, centre: np.ndarray, half_size: np.ndarray) -> _Grid:
        """Sub-grid of the box centre +- half_size, clipped to the volume."""
        low = np.clip(np.floor(centre - half_size).astype(int), 0, None)
        high = np.minimum(np.ceil(centre + half_size).astype(int) + 1, self.volume_shape)
        return _Grid(self.volume_shape, tuple(slice(int(a), int(b)) for a, b in zip(low, high)))


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian random field with zero mean and unit std, correlated over ~sigma voxels."""
    # Smoothed uniform noise is Gaussian enough and ~5x cheaper to draw than normal noise.
    white = rng.random(shape, dtype=np.float32)
    field = ndimage.gaussian_filter(white, sigma, mode="wrap", truncate=3.0)
    return (field - field.mean()) / (field.std() + 1e-8)


def _blob(
    grid: _Grid,
    centre: np.ndarray,
    radii: np.ndarray,
    angle: float,
    roughness: np.ndarray,
) -> np.ndarray:
    """Ellipsoid rotated in-plane by `angle`, its surface displaced by `roughness`."""
    dx, dy, dz = grid.x - centre[0], grid.y - centre[1], grid.z - centre[2]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    return (u / radii[0]) ** 2 + (v / radii[1]) ** 2 + (dz / radii[2]) ** 2 < 1.0 + roughness


class _Brain:
    """Brain mask plus the shape parameters later stages place things relative to."""

    def __init__(self, rng: np.random.Generator, grid: _Grid):
        X, Y, Z = grid.shape
        self.centre = np.array([X, Y, Z], dtype=np.float32) / 2 - 0.5
        self.centre += rng.uniform(-0.02, 0.02, 3).astype(np.float32) * np.array([X, Y, Z])
        # x: left-right, y: anterior-posterior (the long in-plane axis), z: axial.
        self.radii = np.array(
            [rng.uniform(0.33, 0.37) * X, rng.uniform(0.40, 0.45) * Y, rng.uniform(0.40, 0.44) * Z],
            dtype=np.float32,
        )
        # A flattened z profile (exponent > 2) keeps the axial cross-section large over
        # more slices, then drops quickly: a dome rather than a rugby ball.
        self.z_exponent = rng.uniform(2.2, 2.8)
        surface = np.clip(_smooth_field(rng, grid.shape, 6.0 * grid.xy_scale), -2.5, 2.5)
        dx, dy, dz = (grid.x - self.centre[0], grid.y - self.centre[1], grid.z - self.centre[2])
        self.axial_position = np.abs(dz / self.radii[2])  # 0 at the centre, 1 at the dome
        level = (dx / self.radii[0]) ** 2 + (dy / self.radii[1]) ** 2 + self.axial_position**self.z_exponent
        mask = level < 1.0 + 0.08 * surface
        mask[[0, -1]] = mask[:, [0, -1]] = mask[:, :, [0, -1]] = False
        self.mask = mask
        self.depth = _depth_inside(mask)
        self.midline = float(round(self.centre[0]))  # x of the interhemispheric fissure
        self.coverage = ndimage.gaussian_filter(mask.astype(np.float32), PARTIAL_VOLUME_SIGMA)


def _bounding_box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Slices of the smallest box holding `mask`, grown by `margin` voxels (clipped to the volume)."""
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    return tuple(slice(max(b.start - margin, 0), b.stop + margin) for b in box)


def _depth_inside(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (voxels) to the nearest outside voxel, computed on the mask's bounding box."""
    box = _bounding_box(mask, margin=1)
    depth = np.zeros(mask.shape, dtype=np.float32)
    depth[box] = ndimage.distance_transform_edt(mask[box])
    return depth


# ------------------------------------------------------------------------------ tissues


def _cortex_and_sulci(rng: np.random.Generator, grid: _Grid, brain: _Brain) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the cortical grey-matter rim and of the CSF around/into it (outer layer, sulci)."""
    s = grid.xy_scale
    # One field drives both layers: where the outer CSF is thick, the cortex is thin.
    thickness = _smooth_field(rng, grid.shape, 2.5 * s)
    csf_thickness = 1.1 + 0.4 * thickness
    gm_thickness = s * rng.uniform(2.8, 3.6) - 0.8 * s * thickness
    cortex = brain.mask & (brain.depth <= csf_thickness + gm_thickness)
    # Sulci: thin CSF sheets along the zero crossings of a random field, cutting through the rim.
    folds = _smooth_field(rng, grid.shape, 2.2 * s)
    sulci = cortex & (np.abs(folds) < 0.18) & (brain.depth <= csf_thickness + 0.9 * gm_thickness)
    outer_csf = brain.mask & (brain.depth <= csf_thickness)
    return cortex, outer_csf | sulci


def _midline_fissure(rng: np.random.Generator, grid: _Grid, brain: _Brain) -> np.ndarray:
    """CSF between the hemispheres: front and back at mid levels, all the way across near the top."""
    dx = np.abs(grid.x - brain.midline - rng.uniform(-0.3, 0.3))
    dy = np.abs(grid.y - brain.centre[1]) / brain.radii[1]
    open_from = 0.45 * np.clip(1.0 - brain.axial_position**2, 0.0, 1.0)
    return brain.mask & (dx < 0.6 * grid.xy_scale) & (dy > open_from)


def _ventricles(rng: np.random.Generator, grid: _Grid, brain: _Brain) -> np.ndarray:
    """Two lateral ventricles either side of the midline, banana-shaped and asymmetric."""
    s, sz = grid.xy_scale, grid.z_scale
    z_centre = brain.centre[2] + rng.uniform(0.0, 0.1) * brain.radii[2]
    # Everything below happens in a box that holds both ventricles even at their roughest.
    box_centre = np.array([brain.midline, brain.centre[1], z_centre])
    box = grid.around(box_centre, np.array([10.0 * s, 17.0 * s, 9.0 * sz]) + 1.0)
    roughness = 0.2 * _smooth_field(rng, box.shape, 2.0 * s)
    ventricles = np.zeros(box.shape, dtype=bool)
    for side in (-1.0, 1.0):
        centre = np.array(
            [
                brain.midline + side * rng.uniform(2.5, 4.0) * s,
                brain.centre[1] + rng.uniform(-2.0, 2.0) * s,
                z_centre + rng.uniform(-1.0, 1.0) * sz,
            ]
        )
        radii = np.array([rng.uniform(1.4, 2.6) * s, rng.uniform(7.0, 11.0) * s, rng.uniform(3.5, 6.0) * sz])
        # The horns bend outwards at both ends: shift x by a parabola in y.
        bend = side * rng.uniform(0.5, 1.8) * s * ((box.y - centre[1]) / radii[1]) ** 2
        dx, dy, dz = box.x - centre[0] - bend, box.y - centre[1], box.z - centre[2]
        ventricles |= (dx / radii[0]) ** 2 + (dy / radii[1]) ** 2 + (dz / radii[2]) ** 2 < 1.0 + roughness
    full = np.zeros(grid.shape, dtype=bool)
    full[box.box] = ventricles
    return full & (brain.depth > 3.0 * s)


def _healthy_tissue(rng: np.random.Generator, grid: _Grid, brain: _Brain) -> np.ndarray:
    """Hard tissue map (BACKGROUND/CSF/GM/WM) of the healthy brain."""
    cortex, cortical_csf = _cortex_and_sulci(rng, grid, brain)
    tissue = np.full(grid.shape, BACKGROUND, dtype=np.int8)
    tissue[brain.mask] = WM
    tissue[cortex] = GM
    tissue[cortical_csf | _midline_fissure(rng, grid, brain) | _ventricles(rng, grid, brain)] = CSF
    return tissue


# ------------------------------------------------------------------------------- tumor


def _kept_slice_half_extent(brain: _Brain) -> float:
    """Approximate half-height (voxels) of the slab whose slices are > 30% brain."""
    central_fraction = np.pi * brain.radii[0] * brain.radii[1] / (brain.mask.shape[0] * brain.mask.shape[1])
    # Cross-section area ~ central_fraction * (1 - t**p) at normalised height t.
    t = max(0.0, 1.0 - 0.3 / central_fraction) ** (1.0 / brain.z_exponent)
    return float(t * brain.radii[2])


def _tumor_centre(rng: np.random.Generator, grid: _Grid, brain: _Brain, core_radius: float, z_half_span: float) -> np.ndarray:
    """A random centre in either hemisphere where the core fits inside the brain and its hemisphere.

    The axial level is drawn once, uniformly over the kept slab and a little beyond:
    rejecting shallow centres in 3D would crowd tumors into the middle slices, and then
    a classifier could tell tumor slices apart by brain area alone.
    """
    z_room = _kept_slice_half_extent(brain) + 0.25 * z_half_span
    z = brain.centre[2] + rng.uniform(-1.0, 1.0) * z_room
    best, best_room = None, -np.inf
    for _ in range(50):
        side = rng.choice([-1.0, 1.0])
        x = brain.centre[0] + side * rng.uniform(0.12, 0.65) * brain.radii[0]
        y = brain.centre[1] + rng.uniform(-0.6, 0.6) * brain.radii[1]
        centre = np.array([x, y, z], dtype=np.float32)
        depth = brain.depth[tuple(np.clip(np.round(centre).astype(int), 0, np.array(grid.shape) - 1))]
        room = min(depth - 2.0, abs(x - brain.midline) - 1.5) - core_radius
        if room >= 0:
            return centre
        if room > best_room:  # fall back on the roomiest candidate
            best, best_room = centre, room
    return best


def _tumor_labels(rng: np.random.Generator, grid: _Grid, brain: _Brain) -> np.ndarray:
    """BraTS label map (0/1/2/4) of one tumor: edema around an enhancing rim around necrosis."""
    s = grid.xy_scale
    # In-plane size varies a lot (small to large); the z size is drawn separately so that
    # the tumor covers ~20-65% (mean ~45%) of the kept axial slices whatever its width.
    edema_xy = np.exp(rng.uniform(np.log(4.0), np.log(14.0))) * s  # log-uniform: many small, some large
    z_half_span = rng.uniform(0.45, 0.65) * _kept_slice_half_extent(brain)
    edema_radii = np.array([edema_xy * rng.uniform(0.8, 1.2), edema_xy * rng.uniform(0.8, 1.2), z_half_span])
    core_radii = edema_radii * rng.uniform(0.4, 0.65)
    necrosis_radii = core_radii * rng.uniform(0.35, 0.65)
    centre = _tumor_centre(rng, grid, brain, float(core_radii[:2].min()), z_half_span)
    core_centre = centre + (rng.uniform(-0.25, 0.25, 3) * (edema_radii - core_radii)).astype(np.float32)
    angle = rng.uniform(0.0, np.pi)

    # Work in a box around the tumor only (roughness can stretch a blob ~1.4x): much cheaper.
    box = grid.around(centre, 1.5 * edema_radii.max() + 2.0)
    in_brain, depth = brain.mask[box.box], brain.depth[box.box]
    edema = _blob(box, centre, edema_radii, angle, 0.35 * _smooth_field(rng, box.shape, 2.5 * s))
    core = _blob(box, core_centre, core_radii, angle, 0.25 * _smooth_field(rng, box.shape, 1.8 * s))
    necrosis = _blob(box, core_centre, necrosis_radii, angle, 0.3 * _smooth_field(rng, box.shape, 1.5 * s))
    # The falx keeps the tumor in its hemisphere; the core also stays off the brain surface.
    hemisphere = (box.x - brain.midline) * np.sign(centre[0] - brain.midline) > 0.5
    edema &= hemisphere
    core &= hemisphere & (depth > 1.5)
    # Keep the nesting strict: a rim of edema around the core, of enhancement around necrosis.
    edema = (edema | ndimage.binary_dilation(core)) & in_brain
    necrosis &= ndimage.binary_erosion(core)

    labels = np.zeros(grid.shape, dtype=np.uint8)
    box_labels = labels[box.box]  # a view: writes land in `labels`
    box_labels[edema] = LABEL_EDEMA
    box_labels[core] = LABEL_ENHANCING
    box_labels[necrosis] = LABEL_NECROSIS
    return labels


# ------------------------------------------------------------------------------ imaging


def _bias_field(rng: np.random.Generator, grid: _Grid, brain: _Brain) -> np.ndarray:
    """Smooth multiplicative field exp(quadratic polynomial), spanning +-10-20% over the brain."""
    u, v, w = (2.0 * c / (n - 1) - 1.0 for c, n in zip((grid.x, grid.y, grid.z), grid.shape))
    terms = [u, v, w, u * v, u * w, v * w, u**2, v**2, w**2]
    coefficients = rng.standard_normal(len(terms)).astype(np.float32)
    log_field = sum(c * t for c, t in zip(coefficients, terms))
    log_field = log_field - log_field[brain.mask].mean()
    log_field *= rng.uniform(0.10, 0.20) / (np.abs(log_field[brain.mask]).max() + 1e-8)
    return np.exp(log_field).astype(np.float32)


def _render(
    rng: np.random.Generator,
    tissue: np.ndarray,
    brain: _Brain,
    grid: _Grid,
    class_means: np.ndarray,
    texture: np.ndarray,
) -> np.ndarray:
    """One modality: partial-volume mix of class means, texture, bias, Rician noise, gain."""
    means = class_means * rng.uniform(0.96, 1.04, class_means.size).astype(np.float32)  # contrast jitter
    piecewise = np.where(tissue == BACKGROUND, np.float32(0.0), means[np.maximum(tissue, 0)])
    # Filtering the piecewise-constant image equals mixing smoothed one-hot tissue maps; dividing
    # by the smoothed brain mask keeps the skull-stripped edge from fading into the background.
    blurred = ndimage.gaussian_filter(piecewise, PARTIAL_VOLUME_SIGMA)
    image = blurred / np.maximum(brain.coverage, 1e-3) * (1.0 + texture)
    image *= _bias_field(rng, grid, brain)
    sigma = rng.uniform(0.02, 0.04) * means[WM]
    real = image + sigma * rng.standard_normal(grid.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(grid.shape, dtype=np.float32)
    image = np.hypot(real, imaginary)  # Rician magnitude: >= 0 by construction
    image *= np.float32(rng.uniform(300.0, 1000.0))
    image[~brain.mask] = 0.0
    return image.astype(np.float32, copy=False)


def _texture(rng: np.random.Generator, grid: _Grid, labels: np.ndarray) -> np.ndarray:
    """Relative intensity texture shared by both modalities (it is anatomy, not noise).

    A few % everywhere, plus stronger heterogeneity inside the tumor.
    """
    texture = 0.03 * _smooth_field(rng, grid.shape, 1.0)
    if not labels.any():  # only possible for tiny volumes
        return texture
    box = _bounding_box(labels > 0, margin=3)
    tumor_weight = ndimage.gaussian_filter((labels[box] > 0).astype(np.float32), 1.0)
    texture[box] += 0.08 * tumor_weight * _smooth_field(rng, tumor_weight.shape, 1.5 * grid.xy_scale)
    return texture


def generate_subject(index: int, spec: SynthSpec) -> dict[str, np.ndarray]:
    """Generate subject `index`: {"flair": float32, "t1": float32, "seg": uint8}, each of spec.shape.

    Uses its own ``np.random.default_rng([spec.seed, index])``, so a subject does not
    depend on how many others are generated.
    """
    return _generate_with_tissue(index, spec)[0]


def _generate_with_tissue(index: int, spec: SynthSpec) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """generate_subject() plus the hard tissue map (BACKGROUND/CSF/GM/WM/...), e.g. for tests."""
    rng = np.random.default_rng([spec.seed, index])
    grid = _Grid(spec.shape)
    brain = _Brain(rng, grid)
    tissue = _healthy_tissue(rng, grid, brain)
    seg = _tumor_labels(rng, grid, brain)
    tissue[seg == LABEL_EDEMA] = EDEMA
    tissue[seg == LABEL_ENHANCING] = ENHANCING
    tissue[seg == LABEL_NECROSIS] = NECROSIS
    texture = _texture(rng, grid, seg)
    flair = _render(rng, tissue, brain, grid, FLAIR_MEANS, texture)
    t1 = _render(rng, tissue, brain, grid, T1_MEANS, texture)
    return {"flair": flair, "t1": t1, "seg": seg}, tissue
