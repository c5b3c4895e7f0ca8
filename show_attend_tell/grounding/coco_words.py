"""COCO object words: which words of a caption name which of the 80 COCO categories.

A word names a category directly ("dog"), through a small synonym table ("puppy", "men"), or as the head of a
two-word name ("hot dog", "teddy bears"). The pointing game (`pointing.py`) scores these words by default.
"""

from __future__ import annotations

from collections.abc import Sequence

COCO_CATEGORIES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Singular words (plurals are added below) -> category. Single-word category names map to themselves, except
# "orange" (mostly a colour in captions), which only counts in the plural.
_SYNONYMS = {
    "person": ["man", "woman", "boy", "girl", "person", "player", "child", "kid", "guy", "lady", "baby", "adult",
               "toddler", "teenager", "gentleman", "skier", "surfer", "skateboarder", "snowboarder", "rider",
               "batter", "catcher", "biker", "cyclist", "tourist", "chef", "worker", "officer", "athlete"],
    "bicycle": ["bicycle", "bike"],
    "motorcycle": ["motorcycle", "motorbike", "scooter", "moped"],
    "airplane": ["airplane", "plane", "aeroplane", "jet", "airliner", "aircraft"],
    "bus": ["bus"],
    "car": ["car", "taxi", "suv"],
    "dog": ["dog", "puppy", "pup"],
    "cat": ["cat", "kitten", "kitty"],
    "horse": ["horse", "pony", "foal"],
    "sheep": ["sheep", "lamb"],
    "cow": ["cow", "calf", "bull", "cattle"],
    "bird": ["bird", "seagull", "gull", "pigeon", "duck", "goose", "parrot"],
    "boat": ["boat", "ship", "sailboat", "canoe", "kayak"],
    "couch": ["couch", "sofa"],
    "tv": ["tv", "television", "monitor"],
    "cell phone": ["phone", "cellphone", "smartphone"],
    "dining table": ["table"],
    "potted plant": ["plant", "houseplant"],
    "sports ball": ["ball"],
    "baseball bat": ["bat"],
    "baseball glove": ["glove", "mitt"],
    "tennis racket": ["racket", "racquet"],
    "fire hydrant": ["hydrant"],
    "parking meter": ["meter"],
    "handbag": ["handbag", "purse", "bag"],
    "suitcase": ["suitcase", "luggage"],
    "donut": ["donut", "doughnut"],
    "refrigerator": ["refrigerator", "fridge"],
    "hot dog": ["hotdog"],
    "teddy bear": ["teddy"],
    "hair drier": ["hairdryer"],
    "laptop": ["laptop"],
    "skis": ["skis"],
    "orange": ["oranges"],
}  # fmt: skip
_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "gentleman": "gentlemen",
    "mouse": "mice", "knife": "knives", "calf": "calves", "goose": "geese", "sheep": "sheep", "cattle": "cattle",
    "skis": "skis", "scissors": "scissors", "broccoli": "broccoli", "luggage": "luggage", "oranges": "oranges",
    "bus": "buses", "taxi": "taxis", "tv": "tvs", "foal": "foals",
}  # fmt: skip
# Two-word category names: the attention of the second (head) word is scored.
_PHRASES = {tuple(name.split()): name for name in COCO_CATEGORIES if " " in name} | {
    ("soccer", "ball"): "sports ball",
    ("tennis", "ball"): "sports ball",
    ("cell", "phone"): "cell phone",
    ("mobile", "phone"): "cell phone",
    ("hair", "dryer"): "hair drier",
    ("hair", "drier"): "hair drier",
}


def _plural(word: str) -> str:
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _build_word_table() -> dict[str, str]:
    table = {}
    for category in COCO_CATEGORIES:
        if " " not in category and category != "orange":
            table[category] = category
    for category, words in _SYNONYMS.items():
        for word in words:
            if " " not in word:
                table[word] = category
    for word, category in list(table.items()):
        table.setdefault(_plural(word), category)
    return table


WORD_TO_CATEGORY: dict[str, str] = _build_word_table()


def caption_categories(words: Sequence[str]) -> list[tuple[int, str]]:
    """`(word index, COCO category)` for the words of a caption that name a category (lower-case words expected).

    Two-word names ("hot dog", "teddy bears", "cell phone") are matched at their second word, which then does not
    also count as its one-word category.
    """
    words = [word.lower() for word in words]
    phrases = {}  # index of the head word -> category
    for index in range(1, len(words)):
        word = words[index]
        for form in (word, word[:-1], word[:-2]):  # "bears" -> "bear", "glasses" -> "glass"
            if (words[index - 1], form) in _PHRASES:
                phrases[index] = _PHRASES[(words[index - 1], form)]
                break
    found = []
    for index, word in enumerate(words):
        if index + 1 in phrases:  # "teddy" in "teddy bear": the phrase is scored at its head word
            continue
        category = phrases.get(index) or WORD_TO_CATEGORY.get(word)
        if category is not None:
            found.append((index, category))
    return found


__all__ = ["COCO_CATEGORIES", "WORD_TO_CATEGORY", "caption_categories"]
