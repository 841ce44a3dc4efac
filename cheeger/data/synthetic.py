"""Procedural street scenes: the embedded default dataset, seeded and deterministic, no download.

Each scene is painted back to front in a one-point perspective: sky, facades with window grids,
a road with dashed markings and crossings, tiled sidewalks, hedges and trees, poles with signs,
vehicles and pedestrians, then lighting (cast shadows, exposure, gamma, colour cast, vignetting)
and sensor noise. Classes deliberately share colour ranges (grey facades, roads, poles and cars;
sky-coloured windows; green cars; brick sidewalks and brick buildings; white markings and white
signs) and differ by texture, shape and position, so per-pixel colour cannot solve the task and
object boundaries carry the information. Class 255 marks an ego-vehicle hood (ignored).

Every image is drawn from its own ``numpy`` ``PCG64`` stream keyed by (seed, split, index), so a
scene does not depend on how many others are generated and the same seed gives byte-identical
output.

Example:
    >>> image, label = synthetic_scene(seed=0, split="train", index=0, size=(64, 80))
    >>> image.shape, image.dtype.name, label.shape, int(label.max()) < 9 or int(label.max()) == 255
    ((64, 80, 3), 'uint8', (64, 80), True)
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

import numpy as np
from PIL import Image

from cheeger.data.prepared import Sample, Source

__all__ = [
    "GENERATOR_VERSION",
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_IGNORE_INDEX",
    "render_scene",
    "synthetic_scene",
    "synthetic_source",
]

SYNTHETIC_CLASSES = (
    "sky", "building", "road", "sidewalk", "vegetation", "vehicle", "pole", "sign", "person",
)  # fmt: skip
SYNTHETIC_IGNORE_INDEX = 255
GENERATOR_VERSION = 1  # bump whenever the rendering changes: it is recorded in the manifest
SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, VEHICLE, POLE, SIGN, PERSON = range(9)


class _Canvas:
    """Float RGB image, label map and pixel grid that shapes are painted onto."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int]) -> None:
        self.rng = rng
        self.h, self.w = size
        self.yy, self.xx = np.mgrid[0 : self.h, 0 : self.w].astype(np.float32)  # (H, W) each
        self.rgb = np.zeros((self.h, self.w, 3), dtype=np.float32)
        self.label = np.zeros((self.h, self.w), dtype=np.uint8)

    def noise(self, cell: float) -> np.ndarray:
        """Smooth unit-variance noise with features about ``cell`` pixels wide."""
        gh, gw = int(self.h / cell) + 2, int(self.w / cell) + 2
        grid = self.rng.standard_normal((gh, gw)).astype(np.float32)
        img = Image.fromarray(grid).resize((self.w, self.h), Image.Resampling.BICUBIC)
        out = np.asarray(img, dtype=np.float32)
        return out / max(float(out.std()), 1e-6)

    def paint(self, mask: np.ndarray, colour: np.ndarray, cls: int, texture=None) -> None:
        """Overwrite pixels under ``mask`` with ``colour`` (x ``texture``) and class ``cls``."""
        shade = colour[None, :] if texture is None else colour[None, :] * texture[mask][:, None]
        self.rgb[mask] = shade
        self.label[mask] = cls


def _neutral(rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """A grey with a faint warm or cool tint: the palette most classes share."""
    return np.clip(rng.uniform(lo, hi) + rng.normal(0.0, 0.03, 3), 0, 1).astype(np.float32)


def _vivid(rng: np.random.Generator) -> np.ndarray:
    """A saturated colour of random hue (cars, clothes, signs)."""
    rgb = rng.uniform(0.05, 0.35, 3)
    rgb[rng.integers(3)] = rng.uniform(0.6, 0.95)
    if rng.random() < 0.4:
        rgb[rng.integers(3)] = rng.uniform(0.5, 0.9)
    return rgb.astype(np.float32)


def _brick(rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.uniform(0.45, 0.7), rng.uniform(0.22, 0.35), rng.uniform(0.15, 0.28)],
                    dtype=np.float32)  # fmt: skip


def _sky(c: _Canvas, horizon: float) -> np.ndarray:
    """Paint the sky gradient with clouds; return the sky colour per row (window reflections)."""
    rng = c.rng
    if rng.random() < 0.55:
        top = np.array([rng.uniform(0.2, 0.45), rng.uniform(0.4, 0.65), rng.uniform(0.75, 1.0)])
    else:  # overcast: the same greys as facades and roads
        top = _neutral(rng, 0.55, 0.9)
    bottom = np.clip(top + rng.uniform(0.05, 0.25), 0, 1)
    t = np.clip(c.yy / max(horizon, 1.0), 0, 1)[..., None]
    clouds = np.clip(c.noise(c.w / 5) * 0.5 - rng.uniform(0.0, 0.6), 0, 1)[..., None]
    c.rgb[:] = (1 - t) * top + t * bottom
    c.rgb[:] = c.rgb * (1 - 0.6 * clouds) + 0.6 * clouds * _neutral(rng, 0.75, 0.95)
    c.label[:] = SKY
    return c.rgb[:, c.w // 2].copy()  # (H, 3)


def _facades(c: _Canvas, horizon: float, vx: float, ks: float, sky_rows: np.ndarray) -> None:
    rng = c.rng
    ground = horizon + np.abs(c.xx - vx) / ks  # sidewalk outer edge per column
    for side in (-1, 1):
        edge = vx
        while 0 <= edge <= c.w:
            width = rng.uniform(0.08, 0.3) * c.w
            lo, hi = sorted((edge, edge + side * width))
            edge += side * width
            cols = (c.xx >= lo) & (c.xx < hi)
            far = min(abs(lo - vx), abs(hi - vx)) / c.w  # facades grow towards the image edge
            if rng.random() < 0.2:  # gap: a hedge in front of the sky
                top = horizon - rng.uniform(0.02, 0.08) * c.h
                tex = 1 + 0.25 * c.noise(2.0)
                c.paint(cols & (c.yy >= top) & (c.yy < ground), _hedge(rng), VEGETATION, tex)
                continue
            top = horizon * (1 - rng.uniform(0.15, 0.6) - far)
            wall = cols & (c.yy >= top) & (c.yy < ground)
            colour = _brick(rng) if rng.random() < 0.3 else _neutral(rng, 0.3, 0.85)
            c.paint(wall, colour, BUILDING, 1 + 0.06 * c.noise(3.0) + 0.04 * c.noise(1.0))
            px, py = rng.uniform(0.04, 0.09) * c.w, rng.uniform(0.06, 0.12) * c.h
            fx, fy = rng.uniform(0.35, 0.7), rng.uniform(0.35, 0.7)
            win = wall & (((c.xx - lo) / px) % 1 < fx) & (((c.yy - top) / py) % 1 < fy)
            win &= c.yy < ground - 0.3 * py
            if rng.random() < 0.5:  # windows mirror the sky
                c.rgb[win] = sky_rows[c.yy[win].astype(int)] * rng.uniform(0.85, 1.05)
            else:
                c.rgb[win] = _neutral(rng, 0.05, 0.25)


def _hedge(rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.25:  # autumn or dusty foliage overlaps facades and bricks
        return np.array([rng.uniform(0.4, 0.65), rng.uniform(0.3, 0.5), rng.uniform(0.1, 0.25)],
                        dtype=np.float32)  # fmt: skip
    return np.array([rng.uniform(0.15, 0.4), rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.3)],
                    dtype=np.float32)  # fmt: skip


def _ground(c: _Canvas, horizon: float, vx: float, kr: float, ks: float) -> None:
    rng = c.rng
    depth = np.maximum(c.yy - horizon, 1e-3)  # rows below the horizon; perspective scale
    off = np.abs(c.xx - vx) / depth  # lateral position in road units
    below = c.yy > horizon
    road = below & (off <= kr)
    walk = below & (off > kr) & (off <= ks)
    c.paint(road, _neutral(rng, 0.18, 0.5), ROAD, 1 + 0.08 * c.noise(1.0) + 0.08 * c.noise(6.0))
    tile = rng.uniform(3.0, 7.0)
    grout = ((off * tile) % 1 < 0.08) | ((c.h / depth * tile / 4) % 1 < 0.1)
    walk_colour = _brick(rng) if rng.random() < 0.4 else _neutral(rng, 0.35, 0.8)
    c.paint(walk, walk_colour, SIDEWALK, (1 - 0.25 * grout) * (1 + 0.05 * c.noise(1.0)))
    curb = walk & (off <= kr * 1.06)
    c.rgb[curb] *= rng.uniform(0.7, 1.3)
    paint = _neutral(rng, 0.78, 0.97) if rng.random() < 0.7 else np.array([0.85, 0.75, 0.2])
    dashes = (c.h / depth * rng.uniform(0.8, 1.5)) % 1 < 0.5
    lines = road & (off < 0.035 * kr) & dashes
    lines |= road & (np.abs(off - 0.9 * kr) < 0.03 * kr)
    if rng.random() < 0.35:  # zebra crossing
        y0 = horizon + rng.uniform(0.3, 0.8) * (c.h - horizon)
        lines |= road & (np.abs(c.yy - y0) < 0.05 * (y0 - horizon)) & ((off * 4) % 1 < 0.5)
    c.rgb[lines] = paint


def _trees(c: _Canvas, horizon: float, vx: float, ks: float) -> None:
    rng = c.rng
    for _ in range(rng.integers(0, 4)):
        x = rng.uniform(0, c.w)
        base = horizon + abs(x - vx) / ks + rng.uniform(0, 0.05) * c.h
        scale = (base - horizon) / (c.h - horizon + 1e-3) + 0.2
        trunk_h, radius = scale * c.h * rng.uniform(0.25, 0.45), scale * c.h * rng.uniform(0.1, 0.2)
        trunk = (np.abs(c.xx - x) < max(1.0, 0.08 * radius)) & (c.yy < base)
        trunk &= c.yy > base - trunk_h
        c.paint(trunk, _neutral(rng, 0.2, 0.45), VEGETATION)
        crown = np.zeros_like(trunk)
        for _ in range(rng.integers(3, 8)):
            cx = x + rng.normal(0, 0.6) * radius
            cy = base - trunk_h - rng.normal(0, 0.5) * radius
            r = radius * rng.uniform(0.5, 1.0)
            crown |= (c.xx - cx) ** 2 + (c.yy - cy) ** 2 < r * r
        leaves = 1 + 0.3 * c.noise(1.0) + 0.2 * c.noise(2.5)
        c.paint(crown, _hedge(rng), VEGETATION, np.clip(leaves, 0.3, 2.0))


def _scale_at(c: _Canvas, y: float, horizon: float) -> float:
    return max(y - horizon, 1.0) / c.h


def _pole(c: _Canvas, x: float, y: float, s: float) -> None:
    """A thin pole standing at ``(x, y)``, often carrying a round or square sign."""
    rng = c.rng
    top = y - s * c.h * rng.uniform(1.2, 2.2)
    pole = (np.abs(c.xx - x) < max(0.6, s * 3)) & (c.yy < y) & (c.yy > top)
    c.paint(pole, _neutral(rng, 0.15, 0.7), POLE, 1 + 0.05 * c.noise(1.0))
    if rng.random() < 0.6:
        r = max(2.0, s * c.h * rng.uniform(0.12, 0.2))
        dx, dy = np.abs(c.xx - x), np.abs(c.yy - top - r)
        plate = (dx**2 + dy**2 < r * r) if rng.random() < 0.5 else (dx < r) & (dy < 0.7 * r)
        colour = _vivid(rng) if rng.random() < 0.7 else _neutral(rng, 0.8, 0.97)
        c.paint(plate, colour, SIGN)


def _vehicle(c: _Canvas, x: float, y: float, s: float, sky_rows: np.ndarray) -> None:
    rng = c.rng
    w = s * c.h * rng.uniform(1.5, 2.1)  # a car is about as tall as the camera is high
    h = w * rng.uniform(0.45, 0.65)
    shadow = ((c.xx - x) / (0.6 * w)) ** 2 + ((c.yy - y) / (0.08 * h + 1)) ** 2 < 1
    c.rgb[shadow & (c.label == ROAD)] *= 0.35  # road stays road, only darker
    roll = rng.random()
    body_colour = _vivid(rng) if roll < 0.35 else _neutral(rng, 0.05 if roll < 0.6 else 0.3, 0.95)
    body = (np.abs(c.xx - x) < w / 2) & (c.yy < y - 0.1 * h) & (c.yy > y - 0.6 * h)
    t = np.clip((y - 0.6 * h - c.yy) / (0.4 * h), 0, 1)  # 0 at the belt line, 1 at the roof
    cabin = (np.abs(c.xx - x) < w * (0.45 - 0.15 * t)) & (c.yy <= y - 0.6 * h) & (c.yy > y - h)
    gloss = 1 + 0.25 * np.exp(-(((c.yy - (y - 0.45 * h)) / (0.05 * h + 0.5)) ** 2))
    c.paint(body | cabin, body_colour, VEHICLE, gloss)
    glass = cabin & (np.abs(c.xx - x) < w * (0.4 - 0.15 * t)) & (c.yy > y - 0.92 * h)
    if rng.random() < 0.5:
        c.rgb[glass] = sky_rows[np.clip(c.yy[glass].astype(int) - int(h), 0, c.h - 1)]
    else:
        c.rgb[glass] = _neutral(rng, 0.05, 0.3)
    for wx in (x - 0.32 * w, x + 0.32 * w):
        wheel = (c.xx - wx) ** 2 + (c.yy - (y - 0.12 * h)) ** 2 < (0.13 * w) ** 2
        c.paint(wheel, _neutral(rng, 0.03, 0.15), VEHICLE)


def _person(c: _Canvas, x: float, y: float, s: float) -> None:
    rng = c.rng
    h = s * c.h * rng.uniform(1.0, 1.3)
    skin = np.array([rng.uniform(0.35, 0.9), rng.uniform(0.25, 0.7), rng.uniform(0.2, 0.55)])
    legs = (np.abs(np.abs(c.xx - x) - 0.07 * h) < 0.05 * h) & (c.yy < y) & (c.yy > y - 0.45 * h)
    torso = (np.abs(c.xx - x) < 0.14 * h) & (c.yy <= y - 0.45 * h) & (c.yy > y - 0.82 * h)
    head = (c.xx - x) ** 2 + (c.yy - (y - 0.9 * h)) ** 2 < (0.08 * h) ** 2
    c.paint(legs, _neutral(rng, 0.05, 0.5), PERSON)
    c.paint(torso, _vivid(rng) if rng.random() < 0.6 else _neutral(rng, 0.1, 0.9), PERSON)
    c.paint(head, skin.astype(np.float32), PERSON)


def _photometry(c: _Canvas, horizon: float) -> np.ndarray:
    """Cast shadow, ego hood, exposure, gamma, colour cast, vignette, noise; return uint8 RGB."""
    rng = c.rng
    if rng.random() < 0.6:  # a building's shadow across the street, labels unchanged
        a = rng.normal(size=2)
        shaded = (c.xx - rng.uniform(0, c.w)) * a[0] + (c.yy - rng.uniform(horizon, c.h)) * a[1] > 0
        c.rgb[shaded & (c.label != SKY)] *= rng.uniform(0.4, 0.75)
    if rng.random() < 0.3:  # ego-vehicle hood: ignored, like Cityscapes' ego vehicle
        bulge = 0.08 * c.h * (2 * c.xx / c.w - 1) ** 2  # the hood curves down at the sides
        top = c.h * (1 - rng.uniform(0.05, 0.12)) + bulge
        c.paint(c.yy > top, _neutral(rng, 0.05, 0.3), SYNTHETIC_IGNORE_INDEX)
    rgb = c.rgb * rng.uniform(0.6, 1.4) * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    r2 = ((c.xx - c.w / 2) / c.w) ** 2 + ((c.yy - c.h / 2) / c.h) ** 2
    rgb *= (1 - rng.uniform(0.0, 0.8) * r2)[..., None]
    rgb = np.clip(rgb, 0, 1) ** rng.uniform(0.7, 1.4)
    rgb += rng.normal(0, rng.uniform(0.01, 0.04), rgb.shape).astype(np.float32)
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def render_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Render one street scene.

    Args:
        rng: the random stream; all randomness comes from it.
        size: ``(H, W)`` in pixels (at least 16 x 16).

    Returns:
        ``image (H, W, 3) uint8`` and ``label (H, W) uint8`` with values in
        ``range(len(SYNTHETIC_CLASSES))`` or ``SYNTHETIC_IGNORE_INDEX``.
    """
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"synthetic scene size must be (H, W) with both >= 16, got {size}")
    c = _Canvas(rng, (int(size[0]), int(size[1])))
    horizon = c.h * rng.uniform(0.38, 0.55)
    vx = c.w * rng.uniform(0.3, 0.7)
    kr = rng.uniform(0.5, 1.2) * c.w / c.h  # road half-width per row below the horizon
    ks = kr * rng.uniform(1.5, 2.3)  # sidewalk outer edge
    sky_rows = _sky(c, horizon)
    _facades(c, horizon, vx, ks, sky_rows)
    _ground(c, horizon, vx, kr, ks)
    _trees(c, horizon, vx, ks)
    ground = c.h - horizon
    objects = []  # (bottom row, kind, x); painted far to near so nearer objects occlude
    for _ in range(rng.integers(0, 4)):  # vehicles on the road
        y = rng.uniform(horizon + 0.1 * ground, c.h * 0.98)
        objects.append((y, "vehicle", vx + rng.uniform(-0.8, 0.8) * kr * (y - horizon)))
    for kind, count, near in (("person", rng.integers(0, 5), 0.8), ("pole", rng.integers(1, 5), 1)):
        for _ in range(count):  # on the sidewalks
            y = rng.uniform(horizon + 0.1 * ground, horizon + near * ground)
            side = rng.choice([-1, 1])
            objects.append((y, kind, vx + side * rng.uniform(kr, ks) * (y - horizon)))
    painters = {"vehicle": lambda x, y, s: _vehicle(c, x, y, s, sky_rows),
                "person": lambda x, y, s: _person(c, x, y, s),
                "pole": lambda x, y, s: _pole(c, x, y, s)}  # fmt: skip
    for y, kind, x in sorted(objects):
        painters[kind](x, y, _scale_at(c, y, horizon))
    return _photometry(c, horizon), c.label


def synthetic_scene(
    seed: int, split: str, index: int, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Scene ``index`` of ``split`` for ``seed``: independent of every other scene."""
    key = [int(seed), zlib.crc32(split.encode()), int(index), GENERATOR_VERSION]
    return render_scene(np.random.Generator(np.random.PCG64(np.random.SeedSequence(key))), size)


def synthetic_source(
    seed: int, splits: Mapping[str, int], size: tuple[int, int], limit: int | None = None
) -> Source:
    """The synthetic dataset as a :class:`Source` for :func:`cheeger.data.write_prepared`.

    Args:
        seed: base seed.
        splits: images per split, e.g. ``{"train": 96, "val": 24, "test": 24}``.
        size: native ``(H, W)`` of the rendered scenes.
        limit: keep at most this many images per split (quick runs and tests).
    """

    def loader(split: str, i: int):
        def load() -> Sample:
            image, label = synthetic_scene(seed, split, i, size)
            return Sample(id=f"{split}_{i:05d}", image=image, label=label, sources={})

        return load

    counts = {s: n if limit is None else min(n, limit) for s, n in splits.items()}
    return Source(
        dataset="synthetic",
        class_names=SYNTHETIC_CLASSES,
        ignore_index=SYNTHETIC_IGNORE_INDEX,
        splits={s: [loader(s, i) for i in range(n)] for s, n in counts.items()},
        info={
            "generator": "cheeger.data.synthetic",
            "generator_version": GENERATOR_VERSION,
            "seed": int(seed),
            "size": [int(size[0]), int(size[1])],
            "counts": {s: int(n) for s, n in splits.items()},
        },
    )
