"""Answer types of methodology questions: what an answer to "Which frameworks ... (e.g., TensorFlow,
PyTorch)?" looks like, beyond the two examples the question names.

Each category is a set of lower-case terms (single words or short phrases, matched on word boundaries).
A question takes the categories that contain one of its examples or of its focus words; a sentence that
mentions a term of those categories is of the right type. This is vocabulary of the deep-learning
methods domain, not of any particular paper.
"""

from __future__ import annotations

import re
from functools import lru_cache

from paperchat.vectorstore.text import GENERIC_WORDS, STOPWORDS, stem, words

CATEGORIES: dict[str, frozenset[str]] = {
    name: frozenset(t.strip() for t in terms.split(",") if t.strip())
    for name, terms in {
        "framework": "tensorflow, pytorch, torch, keras, theano, lasagne, caffe, caffe2, mxnet, jax, flax, "
        "chainer, cntk, paddlepaddle, fastai, detectron, detectron2, darknet, mmdetection, scikit-learn, sklearn, "
        "opencv, matlab, xgboost, lightgbm, h2o, tflite, onnx, huggingface, transformers, librosa, python, r package, "
        "deep learning toolbox, openvino, tensorrt, yolov5, ultralytics, framework, library, libraries",
        "hardware": "gpu, gpus, tpu, tpus, cpu, cpus, nvidia, nvdia, geforce, gtx, rtx, titan, tesla, quadro, "
        "v100, a100, k80, p100, t4, xeon, intel, amd, ryzen, ram, memory, cluster, supercomputer, hpc, "
        "workstation, desktop, laptop, cores, core i7, core i5, cuda, graphics card, graphics processing unit, "
        "high performance computing, cloud computing, google colab, colab, aws, azure",
        "optimizer": "sgd, stochastic gradient descent, adam, adamw, rmsprop, adagrad, adadelta, nadam, momentum, "
        "nesterov, l-bfgs, lbfgs, gradient descent, optimizer, optimiser, learning rate, backpropagation",
        "hyperparameter": "learning rate, batch size, mini-batch, minibatch, epochs, epoch, iterations, momentum, "
        "weight decay, dropout rate, number of layers, neurons, hidden units, kernel size, filters, optimizer, "
        "optimiser, hyperparameter, hyper-parameter, warmup, decay",
        "tuning": "grid search, random search, bayesian optimization, bayesian optimisation, hyperopt, optuna, "
        "cross-validation, cross validation, trial and error, manual tuning, tuned, tuning",
        "regularization": "dropout, weight decay, l1, l2, regularization, regularisation, batch normalization, "
        "batch normalisation, early stopping, data augmentation, label smoothing, max-norm",
        "augmentation": "augmentation, augmented, augment, flip, flipping, flipped, rotation, rotating, rotated, "
        "rotate, crop, cropping, cropped, scaling, zoom, zooming, shift, shifting, translation, brightness, "
        "contrast, jitter, jittering, noise, mixup, cutout, cutmix, shear, elastic, time stretching, pitch shifting",
        "metric": "accuracy, precision, recall, f1, f1-score, f-score, auc, roc, area under the curve, map, "
        "mean average precision, average precision, iou, intersection over union, rmse, mse, mae, r2, kappa, "
        "confusion matrix, sensitivity, specificity, true positive, false positive, loss, error rate, top-1, top-5",
        "model": "cnn, convolutional, rnn, recurrent, lstm, gru, transformer, resnet, vgg, inception, densenet, "
        "efficientnet, mobilenet, alexnet, googlenet, u-net, unet, yolo, faster r-cnn, mask r-cnn, r-cnn, ssd, "
        "retinanet, mlp, multilayer perceptron, feedforward, autoencoder, gan, bert, vision transformer, vit, "
        "neural network, deep neural network, dnn",
        "data_format": "image, images, audio, video, csv, text, spectrogram, spectrograms, wav, jpeg, jpg, png, "
        "tiff, raster, time series, tabular, point cloud, recordings, photographs, photos, scans",
        "dataset": "dataset, datasets, data set, imagenet, coco, mnist, cifar, inaturalist, gbif, snapshot serengeti, "
        "benchmark, corpus, training set, test set, annotated",
        "repository": "github, gitlab, bitbucket, zenodo, figshare, dryad, gbif, osf, code ocean, repository, "
        "available at, available from, https, http, doi, url, supplementary, sourceforge, huggingface",
        "split": "train, training set, test set, testing set, validation, validation set, split, splitting, "
        "holdout, held-out, hold-out, fold, k-fold, cross-validation, stratified, partition, partitioned, %",
        "preprocessing": "normalization, normalisation, normalized, normalised, standardization, scaling, scaled, "
        "resized, resizing, rescaled, cropped, cleaning, filtering, denoising, converted, conversion, "
        "spectrogram, segmentation, tiling, tiles, patches, downsampled, resampled, log-transformed, z-score",
        "annotation": "annotation, annotated, bounding box, bounding boxes, labelled, labeled, labelling, labeling, "
        "segmentation mask, polygons, keypoints, labelimg, cvat, experts, manually",
        "collection": "survey, surveys, sensor, sensors, camera trap, camera traps, recorder, recorders, drone, uav, "
        "satellite, public dataset, field, collected, citizen science, museum, herbarium, microphone",
        "postprocessing": "saliency, grad-cam, confusion matrix, non-maximum suppression, thresholding, threshold, "
        "smoothing, aggregation, ensembling, post-processing, postprocessing, calibration",
        "randomness": "random seed, seed, seeds, random initialization, random initialisation, randomly, "
        "repeated runs, repetitions, shuffling, shuffled, deterministic",
        "deployment": "aws, azure, google cloud, server, web application, app, mobile, android, ios, raspberry pi, "
        "edge device, docker, api, deployed, deployment, serialization, serialized, onnx, tflite, platform",
        "bias": "oversampling, undersampling, class imbalance, imbalanced, balanced, weighted loss, class weights, "
        "stratified, diverse, bias",
        "generalizability": "cross-validation, independent test, external validation, diverse, generalization, "
        "generalisation, unseen, held-out, transfer, different sites, different regions",
        "monitoring": "validation loss, validation accuracy, learning curve, tensorboard, checkpoint, early stopping, "
        "monitored, monitoring, plateau, convergence, converged",
    }.items()
}

_WORD_EDGE = r"(?<![A-Za-z0-9]){}(?![A-Za-z0-9])"


@lru_cache(maxsize=4096)
def term_pattern(term: str) -> re.Pattern[str]:
    """``term`` as whole words, case-insensitive, with spaces or hyphens between its words."""
    return re.compile(_WORD_EDGE.format(re.escape(term).replace(r"\ ", r"[\s-]+")), re.I)


def mentions(text: str, term: str) -> bool:
    """True if ``text`` contains ``term`` as whole words (case-insensitive, spaces or hyphens between)."""
    if term == "%":
        return "%" in text
    return bool(term_pattern(term).search(text))


@lru_cache(maxsize=1)
def _category_stems() -> dict[str, frozenset[str]]:
    return {name: frozenset(stem(t) for t in terms if " " not in t) | terms for name, terms in CATEGORIES.items()}


#: Question words that name a category outright ("Which GPU ...?", "What optimizer ...?").
HEADS = {
    "hardware": "hardware", "gpu": "hardware", "gpus": "hardware", "framework": "framework", "frameworks": "framework",
    "library": "framework", "libraries": "framework", "software": "framework", "toolkit": "framework",
    "optimizer": "optimizer", "optimiser": "optimizer", "metric": "metric", "metrics": "metric",
    "augmentation": "augmentation", "regularization": "regularization", "regularisation": "regularization",
    "repository": "repository", "hyperparameters": "hyperparameter", "hyperparameter": "hyperparameter",
}


def categories_for(examples: list[str], focus: list[str]) -> list[str]:
    """Categories that contain one of the question's examples, or else that a question word names."""
    stems = _category_stems()
    matches = {n: sum(e.lower() in terms or stem(e) in terms for e in examples) for n, terms in stems.items()}
    best = max(matches.values(), default=0)
    if best:
        # the category (or tied categories) holding most of the examples: "Scaling" alone does not make an
        # augmentation question a preprocessing one
        return [n for n, m in matches.items() if m == best]
    heads = _head_stems()
    return list(dict.fromkeys(heads[f] for f in focus if f in heads))


@lru_cache(maxsize=1)
def _head_stems() -> dict[str, str]:
    return {stem(word): category for word, category in HEADS.items()}


def answer_type_terms(examples: list[str], focus: list[str]) -> list[str]:
    """The terms whose mention makes a sentence an answer of the right type: examples and their categories."""
    terms = {e.lower() for e in examples if len(e) > 1}
    for name in categories_for(examples, focus):
        terms |= CATEGORIES[name]
    # question words that also name the category ("framework") say nothing about the answer
    focus_stems = {stem(f) for f in focus}
    return sorted(t for t in terms if t not in focus_stems and stem(t) not in focus_stems)



#: Words of methodology questions that do not say what is asked for ("Which ... is used in the deep
#: learning pipeline?", "How long did training take?", "the data"), beside the stopwords and the generic
#: words of the text toolkit.
QUESTION_WORDS = frozenset(
    """
    what which who whom whose where when how why is are was were do does did used use using employed
    applied involved utilized utilised taken followed implemented adopted type types kind kinds
    deep learning pipeline model models network networks paper study authors data
    build built develop developed create created implement involve perform performed ensure handle handled
    address determine take took come comes achieve achieved step steps
    """.split()
)
_EXAMPLES = re.compile(r"\(\s*(?:e\.\s?g\.|i\.\s?e\.|such as|for example|for instance)\s*,?\s*([^)]*)\)", re.I)


def question_parts(question: str) -> tuple[str, list[str]]:
    """The question without its "(e.g., ...)" examples, and the examples."""
    examples: list[str] = []
    for match in _EXAMPLES.finditer(question):
        examples.extend(x.strip(" .") for x in re.split(r",|;|\bor\b|\band\b|/", match.group(1)) if x.strip(" ."))
    main = re.sub(r"\s+([?.!,;:])", r"\1", re.sub(r"\s+", " ", _EXAMPLES.sub("", question)))
    return main.strip(), examples


def _asks_about(word: str) -> bool:
    low = word.lower()
    if low in STOPWORDS or low in QUESTION_WORDS or low in GENERIC_WORDS:
        return False
    return len(low) >= 3 or any(c.isdigit() for c in low)


def focus_terms(question: str) -> list[str]:
    """Stems of the words that say what is asked for."""
    main, _ = question_parts(question)
    return list(dict.fromkeys(stem(w) for w in words(main) if _asks_about(w)))


def example_terms(question: str) -> list[str]:
    """Stems of the example words ("GPUs, TPUs" -> ["gpu", "tpu"])."""
    _, examples = question_parts(question)
    return list(dict.fromkeys(stem(w) for e in examples for w in words(e) if len(w) >= 2 and w.lower() not in STOPWORDS))


def expand_query(question: str) -> str:
    """The words to search lexically for a question: those that say what it asks about and its examples,
    twice (BM25 weighs a term by how often the query repeats it), then the other terms of their answer type
    once, one word per stem; the words every methodology question shares ("deep learning model") are left
    out."""
    main, examples = question_parts(question)
    kept = [w for w in words(main) if w.lower() not in STOPWORDS and w.lower() not in QUESTION_WORDS]
    own = _one_per_stem(" ".join([*kept, *examples]), set())
    types = _one_per_stem(" ".join(answer_type_terms(examples, focus_terms(question))), set(own))
    return " ".join([*own.values(), *own.values(), *types.values()])


def _one_per_stem(text: str, skip: set[str]) -> dict[str, str]:
    """The first word of each stem in a text (words split at joiners, as the keyword index splits them)."""
    out: dict[str, str] = {}
    for word in words(text):
        for part in [word] if word.replace(".", "").isdigit() else re.split(r"[.\-+]", word):
            key = stem(part)
            if len(part) > 1 and part.lower() not in STOPWORDS and key not in skip:
                out.setdefault(key, part)
    return out
