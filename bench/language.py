"""Language identification of the request log (``observe.language.language_of``): accuracy
per language and cost per prompt, against the script heuristic it replaced.

Sets, each labelled with the language its source is in:
- en: NQ-open dev questions (CC BY-SA 3.0), banking77 test (CC BY 4.0) and poem-sentiment
  test verses (CC BY 4.0), all in ../shared/datasets;
- zh: CMRC 2018 dev questions and paragraphs (Chinese Wikipedia, CC BY-SA 4.0);
- 17 more languages: Faker's (MIT) word lists of real words in each locale, seeded, as
  sentences of 4-12 words: real vocabulary, not real grammar.

A text counts as right when ``language_of`` gives its language. Not gated: a table and
bench/results/language.json.

    .venv/bin/python bench/language.py [--per-locale 200] [--seed 20261206]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from faker import Faker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from modelyard.observe.language import language_of, script_of  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
# Faker locales whose lorem provider holds real words of the language.
LOCALES = {
    "fr": "fr_FR",
    "de": "de_DE",
    "es": "es_ES",
    "it": "it_IT",
    "nl": "nl_NL",
    "pl": "pl_PL",
    "cs": "cs_CZ",
    "da": "da_DK",
    "vi": "vi_VN",
    "ru": "ru_RU",
    "uk": "uk_UA",
    "el": "el_GR",
    "ar": "ar_AA",
    "fa": "fa_IR",
    "bn": "bn_BD",
    "th": "th_TH",
    "ja": "ja_JP",
}


def real_sets() -> dict[str, tuple[str, list[str]]]:
    with (DATASETS / "nq_open_dev.jsonl").open() as lines:
        nq = [json.loads(line)["question"] for line in lines]
    with (DATASETS / "banking77_test.csv").open(newline="") as rows:
        banking = [row["text"] for row in csv.DictReader(rows)]
    with (DATASETS / "poem_sentiment_test.tsv").open() as rows:
        poems = [line.split("\t")[1] for line in rows if line.strip()]
    cmrc = json.loads((DATASETS / "cmrc2018_dev_squad.json").read_text())
    paragraphs = [p for article in cmrc["data"] for p in article["paragraphs"]]
    return {
        "nq_open": ("en", nq),
        "banking77": ("en", banking),
        "poem_sentiment": ("en", poems),
        "cmrc2018 questions": ("zh", [q["question"] for p in paragraphs for q in p["qas"]]),
        "cmrc2018 paragraphs": ("zh", sorted({p["context"] for p in paragraphs})),
    }


def faker_sets(per_locale: int, seed: int) -> dict[str, tuple[str, list[str]]]:
    sets: dict[str, tuple[str, list[str]]] = {}
    for code, locale in LOCALES.items():
        fake = Faker(locale)
        fake.seed_instance(seed)
        texts = [str(fake.sentence(nb_words=fake.random_int(4, 12))) for _ in range(per_locale)]
        sets[f"faker {locale}"] = (code, texts)
    return sets


def per_text_us(texts: list[str], identify: Any, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for text in texts:
            identify(text)
        best = min(best, time.perf_counter() - started)
    return best / len(texts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-locale", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    language_of("warm up the detector")
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sets = {**real_sets(), **faker_sets(args.per_locale, args.seed)}
    rows: dict[str, dict[str, Any]] = {}
    print(f"{'set':<22}{'lang':>6}{'texts':>7}{'right':>8}{'accuracy':>10}  most common wrong")
    for name, (code, texts) in sets.items():
        found = [language_of(text) for text in texts]
        right = sum(f == code for f in found)
        wrong = Counter(str(f) for f in found if f != code).most_common(3)
        rows[name] = {
            "language": code,
            "texts": len(texts),
            "right": right,
            "accuracy": right / len(texts),
            "wrong": dict(wrong),
            "mean_chars": statistics.fmean(map(len, texts)),
        }
        print(f"{name:<22}{code:>6}{len(texts):>7}{right:>8}{right / len(texts):>10.3f}  {wrong}")
    real = [t for name, (_, texts) in real_sets().items() for t in texts]
    cost = {
        "language_of_us": per_text_us(real, language_of),
        "script_of_us": per_text_us(real, script_of),
        "texts": len(real),
        "mean_chars": statistics.fmean(map(len, real)),
        "rss_kib_loading": rss_after - rss_before,
    }
    print(
        f"\ncost per text over the {len(real)} real texts (mean {cost['mean_chars']:.0f} "
        f"characters, one thread): language_of {cost['language_of_us']:.1f} µs, "
        f"script_of {cost['script_of_us']:.1f} µs; RSS grown by the first call "
        f"{cost['rss_kib_loading']} KiB"
    )
    out = ROOT / "bench" / "results" / "language.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sets": rows, "cost": cost, "seed": args.seed}, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
