"""Concurrent chat sessions against one chain, as the chat app serves them (one shared chain per process).

Used by ``tests/integration/test_load.py`` and ``bench/reliability.py``.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

#: Questions the load runs ask: methodology questions, short follow-ups, one no paper answers.
LOAD_QUESTIONS = [
    "Which deep learning framework was used?",
    "Which hardware resources are used for training the deep learning model (e.g., GPUs, TPUs)?",
    "How were the images annotated?",
    "What data augmentation techniques are applied (e.g., flipping, rotating)?",
    "Which metrics are used to evaluate the model?",
    "and what about the learning rate?",
    "Which GPU were the QRNNs trained on?",
    "What is the capital of France?",
]


def run_sessions(
    chain: Any,
    questions: list[str],
    papers: list[str],
    sessions: int,
    turns: int,
    seed: int = 0,
    time_limit_s: float = 600.0,
) -> dict[str, Any]:
    """``sessions`` threads at once, each asking ``turns`` questions in turn: half restricted to a random
    paper, every third a follow-up carrying the session's history. Returns latencies and errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit_s

    def session(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        history: list[tuple[str, str]] = []
        for turn in range(turns):
            if time.monotonic() > deadline:
                with lock:
                    errors.append(f"session {number}: time limit reached at turn {turn}")
                return
            request: dict[str, Any] = {"question": rng.choice(questions)}
            if rng.random() < 0.5:
                request["papers"] = [rng.choice(papers)]
            if turn % 3 == 2 and history:
                request["chat_history"] = history[-2:]
            start = time.perf_counter()
            try:
                result = chain.invoke(request)
                history.append((request["question"], result.answer))
                with lock:
                    latencies.append(time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001 - counted and reported, never raised
                with lock:
                    errors.append(f"session {number}: {type(exc).__name__}: {exc}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=sessions, thread_name_prefix="session") as pool:
        for future in [pool.submit(session, i) for i in range(sessions)]:
            future.result()
    seconds = time.perf_counter() - start
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {
        "sessions": sessions, "turns_per_session": turns, "answers": len(latencies), "errors": errors,
        "seconds": round(seconds, 1), "answers_per_s": round(len(latencies) / seconds, 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
    }
