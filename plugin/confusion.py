"""Counts of a yes/no prediction against a yes/no truth, and the measures made of them.

Shared by ``paperchat eval`` (abstention: "I don't know" predicted, the paper does not answer) and the
agreement with human coders on the Extract page (reported by paperchat, reported according to the coder).

Cohen's kappa is the agreement beyond chance: ``(p_o - p_e) / (1 - p_e)``, with ``p_o`` the share of
agreeing pairs and ``p_e`` the agreement expected from the two sides' own rates of "yes". When both sides
say the same thing for every pair, ``p_e`` is 1 and kappa is undefined (None): there is nothing to agree
on beyond chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def ratio(a: float, b: float) -> float | None:
    """``a / b`` rounded to 4 places, or None when ``b`` is 0."""
    return None if b == 0 else round(a / b, 4)


@dataclass(slots=True)
class Confusion:
    """tp: predicted yes, truly yes; fp: predicted yes, truly no; fn: predicted no, truly yes; tn: both no."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, predicted: bool, actual: bool) -> None:
        """Count one pair."""
        if predicted:
            if actual:
                self.tp += 1
            else:
                self.fp += 1
        elif actual:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    @property
    def accuracy(self) -> float | None:
        return ratio(self.tp + self.tn, self.n)

    @property
    def precision(self) -> float | None:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        return round(2 * p * r / (p + r), 4) if p and r else None

    @property
    def kappa(self) -> float | None:
        """Cohen's kappa (module docstring)."""
        n = self.n
        if n == 0:
            return None
        observed = (self.tp + self.tn) / n
        yes_pred, yes_true = (self.tp + self.fp) / n, (self.tp + self.fn) / n
        expected = yes_pred * yes_true + (1 - yes_pred) * (1 - yes_true)
        if expected >= 1.0:
            return None
        return round((observed - expected) / (1 - expected), 4)

    def as_dict(self) -> dict[str, Any]:
        """Accuracy, precision, recall, F1 and the four counts (the benchmark's abstention block)."""
        return {"accuracy": self.accuracy, "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}
