"""The built-in offline data set: synthetic scenes of two coloured shapes with compositional captions.

Each scene shows two shapes (circle, square or triangle in red, green, blue or yellow) in two different cells of a
4x4 grid (32 px cells at the default 128 px, matching the 4x4 attention grid of a stride-32 backbone), on a plain
light background with slight noise. The captions name both shapes and their spatial relation, in several phrasings:
"a red circle above a blue square", "a blue square below a red circle", "there is a red circle above a blue square".
"""

from __future__ import annotations

import io

import numpy as np
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage
from PIL import ImageDraw

COLORS = {"red": (215, 40, 40), "green": (40, 160, 60), "blue": (45, 80, 215), "yellow": (235, 200, 30)}
SHAPES = ("circle", "square", "triangle")
GRID = 4  # cells per side
# relation of the first shape to the second -> its inverse
INVERSE_RELATION = {"above": "below", "below": "above", "to the left of": "to the right of"}
INVERSE_RELATION["to the right of"] = "to the left of"
# Split name -> offset mixed into the seed, so that train, validation and test scenes come from disjoint streams.
SPLIT_SEED_OFFSETS = {"train": 0, "validation": 1, "test": 2}
DEFAULT_SPLIT_SIZES = {"train": 1500, "validation": 100, "test": 100}

FEATURES = Features(
    {
        "image": Image(),
        "captions": List(Value("string")),
        "image_id": Value("string"),
        "objects": {
            "bbox": List(List(Value("float32"))),
            "category": List(Value("string")),
            "color": List(Value("string")),
        },
    }
)


def relation(first_cell: tuple[int, int], second_cell: tuple[int, int]) -> str:
    """Spatial relation of the shape in `first_cell` to the one in `second_cell` (cells are `(row, column)`).

    The dominant axis decides; callers never place shapes on a diagonal (|row offset| == |column offset|).
    """
    rows, columns = second_cell[0] - first_cell[0], second_cell[1] - first_cell[1]
    if abs(rows) > abs(columns):
        return "above" if rows > 0 else "below"
    return "to the left of" if columns > 0 else "to the right of"


def scene_captions(first: str, second: str, first_relation: str) -> list[str]:
    """Four phrasings of "`first` `first_relation` `second`", where `first`/`second` are like "red circle"."""
    inverse = INVERSE_RELATION[first_relation]
    return [
        f"a {first} {first_relation} a {second}",
        f"a {second} {inverse} a {first}",
        f"there is a {first} {first_relation} a {second}",
        f"a {first} is {first_relation} a {second}",
    ]


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float], fill) -> None:
    left, top, right, bottom = box
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    else:
        draw.polygon([((left + right) / 2, top), (right, bottom), (left, bottom)], fill=fill)


def _pick_cells(rng: np.random.Generator) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two grid cells that are not on a common diagonal, so their relation is unambiguous."""
    while True:
        first, second = (divmod(int(cell), GRID) for cell in rng.choice(GRID * GRID, size=2, replace=False))
        if abs(first[0] - second[0]) != abs(first[1] - second[1]):
            return first, second


def _png_bytes(image: PILImage.Image) -> bytes:
    """Lossless PNG with fast compression (PIL's default level makes encoding the main cost of generation)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def make_scene(rng: np.random.Generator, image_size: int = 128) -> dict:
    """One random scene: `image` (PIL RGB), `captions`, and `objects` (`bbox` [x, y, w, h] in pixels, `category`,
    `color`), listing the caption's first-named shape first."""
    cell = image_size / GRID
    background = int(rng.integers(225, 246))
    pixels = rng.normal(background, 4.0, size=(image_size, image_size, 3))
    image = PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(image)

    pairs = [(color, shape) for color in COLORS for shape in SHAPES]
    first_pair, second_pair = (pairs[int(index)] for index in rng.choice(len(pairs), size=2, replace=False))
    cells = _pick_cells(rng)
    objects = {"bbox": [], "category": [], "color": []}
    for (color, shape), (row, column) in zip((first_pair, second_pair), cells, strict=True):
        side = cell * rng.uniform(0.55, 0.75)
        jitter = (cell - side) / 2
        left = column * cell + jitter + rng.uniform(-jitter, jitter)
        top = row * cell + jitter + rng.uniform(-jitter, jitter)
        fill = tuple(int(np.clip(channel + rng.integers(-15, 16), 0, 255)) for channel in COLORS[color])
        _draw_shape(draw, shape, (left, top, left + side, top + side), fill)
        objects["bbox"].append([round(left, 2), round(top, 2), round(side, 2), round(side, 2)])
        objects["category"].append(shape)
        objects["color"].append(color)
    captions = scene_captions(" ".join(first_pair), " ".join(second_pair), relation(*cells))
    return {"image": image, "captions": captions, "objects": objects}


def make_shapes_dataset(num_images: int, seed: int, image_size: int = 128, id_prefix: str | None = None) -> Dataset:
    """`num_images` random scenes, deterministic given `seed`, in the canonical caption form (`image`, `captions`,
    `image_id` = `{id_prefix}-{index}`) plus `objects` (`bbox` [x, y, w, h] in pixels, `category` shape name, `color`
    colour word; the caption's first-named shape first)."""
    if num_images < 1:
        raise ValueError(f"num_images must be at least 1, got {num_images}")
    if image_size < 32 or image_size % GRID:
        raise ValueError(f"image_size must be a multiple of {GRID} and at least 32, got {image_size}")
    rng = np.random.default_rng(seed)
    scenes = [make_scene(rng, image_size) for _ in range(num_images)]
    return Dataset.from_dict(
        {
            "image": [{"bytes": _png_bytes(scene["image"]), "path": None} for scene in scenes],
            "captions": [scene["captions"] for scene in scenes],
            "image_id": [f"{id_prefix or f'shapes-{seed}'}-{index:06d}" for index in range(num_images)],
            "objects": [scene["objects"] for scene in scenes],
        },
        features=FEATURES,
    )


def make_shapes_split(split: str, seed: int = 0, num_images: int | None = None, image_size: int = 128) -> Dataset:
    """One split of the built-in set: its own seed stream (`[seed, split offset]`) keeps the splits disjoint."""
    if split not in SPLIT_SEED_OFFSETS:
        raise ValueError(
            f"Unknown split {split!r} for the built-in shapes data set; use one of {list(SPLIT_SEED_OFFSETS)}"
        )
    num_images = DEFAULT_SPLIT_SIZES[split] if num_images is None else num_images
    split_seed = int(np.random.SeedSequence([seed, SPLIT_SEED_OFFSETS[split]]).generate_state(1)[0])
    return make_shapes_dataset(num_images, split_seed, image_size, id_prefix=f"shapes-{seed}-{split}")


def shapes_splits(
    seed: int = 0,
    num_train: int = DEFAULT_SPLIT_SIZES["train"],
    num_validation: int = DEFAULT_SPLIT_SIZES["validation"],
    num_test: int = DEFAULT_SPLIT_SIZES["test"],
    image_size: int = 128,
) -> DatasetDict:
    """Train, validation and test splits of the built-in set, generated from disjoint seed streams."""
    sizes = {"train": num_train, "validation": num_validation, "test": num_test}
    return DatasetDict({split: make_shapes_split(split, seed, size, image_size) for split, size in sizes.items()})
