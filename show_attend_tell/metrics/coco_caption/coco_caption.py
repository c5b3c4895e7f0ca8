"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, optional SPICE) as an `evaluate` metric module.

Load it offline with `evaluate.load("<path to this folder>")`; the computation is
`show_attend_tell.metrics.compute_caption_metrics` (pycocoevalcap with its PTB tokenizer), so this module and the
plain-Python API give the same numbers.
"""

import datasets
import evaluate

from show_attend_tell.metrics import compute_caption_metrics

_CITATION = """\
@inproceedings{papineni2002bleu, title={BLEU: a Method for Automatic Evaluation of Machine Translation},
  author={Papineni, Kishore and Roukos, Salim and Ward, Todd and Zhu, Wei-Jing}, booktitle={ACL}, year={2002}}
@inproceedings{banerjee2005meteor, title={METEOR: An Automatic Metric for MT Evaluation with Improved Correlation with
  Human Judgments}, author={Banerjee, Satanjeev and Lavie, Alon}, booktitle={ACL Workshop}, year={2005}}
@inproceedings{lin2004rouge, title={ROUGE: A Package for Automatic Evaluation of Summaries}, author={Lin, Chin-Yew},
  booktitle={Text Summarization Branches Out}, year={2004}}
@inproceedings{vedantam2015cider, title={CIDEr: Consensus-based Image Description Evaluation},
  author={Vedantam, Ramakrishna and Zitnick, C. Lawrence and Parikh, Devi}, booktitle={CVPR}, year={2015}}
@article{chen2015microsoft, title={Microsoft COCO Captions: Data Collection and Evaluation Server},
  author={Chen, Xinlei and Fang, Hao and Lin, Tsung-Yi and Vedantam, Ramakrishna and Gupta, Saurabh and
  Doll{\'a}r, Piotr and Zitnick, C. Lawrence}, journal={arXiv preprint arXiv:1504.00325}, year={2015}}
"""

_DESCRIPTION = """\
The standard COCO caption metrics, computed by pycocoevalcap: captions are lower-cased and tokenised by the Stanford
PTB tokenizer (punctuation removed), then scored with BLEU-1..4, METEOR 1.5, ROUGE-L and CIDEr-D against several
reference captions per image. SPICE is added when requested and able to run; otherwise it is skipped with a warning.
Scores are on pycocoevalcap's scale (0-1, CIDEr about 0-10). Requires Java.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): one generated caption per image. An empty caption is allowed and scores 0.
    references (`list[list[str]]`): the reference captions of each image (at least one, non-empty).
    spice (`bool`, defaults to `False`): also compute SPICE (skipped with a warning when it cannot run).
Returns:
    `dict[str, float]` with keys "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr" (and "SPICE").
Examples:
    >>> metric = evaluate.load("show_attend_tell/metrics/coco_caption")
    >>> results = metric.compute(predictions=["a dog runs on the grass"],
    ...                          references=[["A dog running on grass.", "A brown dog runs across a lawn."]])
    >>> sorted(results)
    ['BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'CIDEr', 'METEOR', 'ROUGE-L']
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CocoCaption(evaluate.Metric):
    """COCO caption metrics (pycocoevalcap) for `evaluate`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
            codebase_urls=["https://github.com/salaniz/pycocoevalcap"],
            reference_urls=["https://arxiv.org/abs/1504.00325"],
        )

    def _compute(self, predictions: list[str], references: list[list[str]], spice: bool = False) -> dict[str, float]:
        return compute_caption_metrics(
            predictions=dict(enumerate(predictions)), references=dict(enumerate(references)), spice=spice
        )
