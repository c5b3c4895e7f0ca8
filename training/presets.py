"""Column layouts of common caption data sets on the Hugging Face Hub (`--preset`).

Each preset names a parquet data set on the Hub and says where its images, captions and image ids are. Explicit
`--image_column`, `--caption_column`, `--image_id_column` and `--dataset_name` override a preset's values, so a
preset also describes any data set with the same layout (a local copy, a mirror, a re-upload).

What was checked: the schemas below come from the data sets' Hub cards (features and splits), read through a
documentation search; no data set was downloaded here (this machine has no Hub access). The column mapping of every
preset is tested offline on small tables that mimic those schemas (tests/training/test_data.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CaptionPreset:
    """Where a data set keeps its images, captions and image ids.

    Args:
        dataset_name: Hub data set id used when no `dataset_name` is given.
        caption_columns: columns holding captions: one string, a list of strings, a dict with `raw`, or a list of
            such dicts (Karpathy JSON); several columns are concatenated (e.g. `caption_0` ... `caption_4`).
        image_column: column holding images (an `Image` feature, bytes, or file paths/URLs); `None` when the data
            set only stores file paths in `image_path_columns`.
        image_path_columns: columns joined with "/" into a file path relative to `image_dir`, for data sets that do
            not store the images themselves.
        image_id_column: column identifying the image; rows sharing an id are grouped into one example.
        split_names: canonical split name -> the data set's own split name, where they differ.
        notes: caveats shown in errors and docs.
    """

    dataset_name: str
    caption_columns: tuple[str, ...]
    image_column: str | None = "image"
    image_path_columns: tuple[str, ...] = ()
    image_id_column: str | None = None
    split_names: dict[str, str] = field(default_factory=dict)
    notes: str = ""


PRESETS: dict[str, CaptionPreset] = {
    # Card: features filepath, sentids, filename, imgid, split, sentences (list of str), cocoid, url; splits train,
    # validation, test, restval (the Karpathy split; train + restval = the usual 113k training images). No images.
    "coco-karpathy": CaptionPreset(
        dataset_name="yerevann/coco-karpathy",
        caption_columns=("sentences",),
        image_column=None,
        image_path_columns=("filepath", "filename"),
        image_id_column="cocoid",
        notes=(
            "yerevann/coco-karpathy stores captions, COCO file paths and image URLs, not the images: download the "
            "COCO 2014 images (train2014/ and val2014/) and pass --image_dir pointing at the folder that holds them; "
            "each image is read from IMAGE_DIR/filepath/filename. To read the images from their URLs instead, pass "
            "--image_column url (every image is then downloaded while loading). Use the `restval` split for extra "
            "training images."
        ),
    ),
    # Card: features image, caption_0 ... caption_4 (str); splits train 6000, validation 1000, test 1000.
    "flickr8k": CaptionPreset(
        dataset_name="jxie/flickr8k",
        caption_columns=tuple(f"caption_{index}" for index in range(5)),
    ),
    # Card: features image, caption (list of str), sentids, split, img_id, filename; splits train 29000, val 1014,
    # test 1000 (the Karpathy split). nlphuji/flickr30k has the same columns but is a loader-script data set, which
    # `datasets` 4+ cannot load; lmms-lab/flickr30k (parquet, same columns but no `split`) holds all 31,783 images in
    # a single `test` split.
    "flickr30k": CaptionPreset(
        dataset_name="umaru97/flickr30k_train_val_test",
        caption_columns=("caption",),
        image_id_column="img_id",
        split_names={"validation": "val"},
        notes="Same layout: lmms-lab/flickr30k (one `test` split with all images).",
    ),
}


def get_preset(name: str) -> CaptionPreset:
    """The preset called `name`, or a `ValueError` listing the known presets."""
    if name not in PRESETS:
        raise ValueError(f"Unknown dataset preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
