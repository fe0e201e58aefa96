"""PII detection: precision and recall per entity type, and detect() throughput and cost.

Three sets:
- presidio: ../shared/datasets/presidio_generated_small.json (microsoft/presidio-research,
  MIT; fake identities from Fake Name Generator, CC BY-SA 3.0 US), English, its entity types
  mapped to ours; the types modelyard does not detect (PERSON, ADDRESS, ...) are skipped
  and listed. Presidio's CREDIT_CARD covers UnionPay, so our BANK_CARD counts as it there.
- chinese: generated here, seeded, with Faker zh_CN sentences around resident IDs (Faker's
  ssn), mobiles (Faker's phone_number), UnionPay cards, unified social credit codes,
  passports and landlines built with valid check characters, plus near misses (wrong check
  character, impossible birth date, wrong length, broken Luhn digit) and ordinary numbers
  (dates, amounts, order numbers) that must not be reported.
- international: generated here, seeded (bench/pii_international.py): payment cards of
  every scheme at each length it issues, phone numbers of every country libphonenumber
  knows in international and (US, GB) national formats, and numbers that must not be
  reported (order numbers, Unix times, ISBNs, non-Luhn 16 digits, ...); also how often the
  reported card scheme and phone country are right.

Besides, not gated: the detections and prompt-injection flags on real texts without PII
labels (CMRC 2018 dev contexts and questions, Chinese Wikipedia, CC BY-SA 4.0; NQ-open dev
questions; banking77 test), each printed so one can judge whether it is a false alarm.

A finding matches a gold span when they overlap and have the same type; every finding
without one is a false positive of its type. Targets: precision and recall >= 0.95 for the
checksum-validated types, >= 0.90 for the others. Exits 1 when a target is missed. The
presidio set's PHONE recall is shown but not gated: 8 of its 10 phone numbers are Faker's
inventions that no numbering plan of the default regions has (see docs/pii.md).

    .venv/bin/python bench/pii.py [--per-type 200] [--per-scheme 60] [--seed 20261124]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faker import Faker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.pii_international import international_set  # noqa: E402
from modelyard.guard.injection import InjectionScanner  # noqa: E402
from modelyard.guard.pii import PiiDetector  # noqa: E402
from modelyard.guard.pii.checksums import (  # noqa: E402
    CN_PROVINCES,
    USCC_ALPHABET,
    cn_id_check_char,
    luhn_check_digit,
    uscc_check_char,
)

DATASETS = ROOT.parent / "shared" / "datasets"
PRESIDIO = DATASETS / "presidio_generated_small.json"
PRESIDIO_TYPES = {
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "US_SSN",
    "IP_ADDRESS": "IP_ADDRESS",
}
VALIDATED = {"CN_ID", "BANK_CARD", "CREDIT_CARD", "CN_USCC", "IBAN", "IP_ADDRESS"}
TARGET_VALIDATED, TARGET_OTHER = 0.95, 0.90


@dataclass
class Sample:
    text: str
    gold: list[tuple[str, int, int]] = field(default_factory=list)
    subtypes: list[str | None] = field(default_factory=list)  # one per gold span, if known


# --- (a) presidio ------------------------------------------------------------------------


def presidio_set() -> tuple[list[Sample], dict[str, int], list[str]]:
    """Samples with the spans of our types; counts of the skipped types; offset repairs."""
    samples: list[Sample] = []
    skipped: dict[str, int] = {}
    repairs: list[str] = []
    for record in json.loads(PRESIDIO.read_text()):
        text = record["full_text"]
        sample = Sample(text)
        for span in record["spans"]:
            kind, value, stated = span["entity_type"], span["entity_value"], span["start_position"]
            ours = PRESIDIO_TYPES.get(kind)
            located = _locate(text, value, stated)
            if located != stated:
                where = "not found" if located is None else f"found at {located}"
                use = "dropped" if located is None else "moved"
                repairs.append(
                    f"{kind} {value!r}: stated at {stated}, {where}; "
                    + (f"span {use}" if ours else "a type not scored")
                )
            if ours is None:
                skipped[kind] = skipped.get(kind, 0) + 1
            elif located is not None:
                sample.gold.append((ours, located, located + len(value)))
        samples.append(sample)
    return samples, skipped, repairs


def _locate(text: str, value: str, start: int) -> int | None:
    """Where ``value`` is in ``text``: at ``start`` if it is there, else nearest to it."""
    if text[start : start + len(value)] == value:
        return start
    found: list[int] = []
    position = text.find(value)
    while position != -1:
        found.append(position)
        position = text.find(value, position + 1)
    return min(found, key=lambda p: abs(p - start)) if found else None


# --- (b) chinese -------------------------------------------------------------------------


LABELS = {
    "CN_ID": ["身份证号：", "我的身份证是", "身份证号码", "证件号 ", "ID: "],
    "CN_MOBILE": ["手机：", "请拨打", "联系电话", "手机号码是 ", "call "],
    "BANK_CARD": ["银行卡号：", "请转账到", "卡号", "储蓄卡 ", "card "],
    "CN_USCC": ["统一社会信用代码：", "信用代码", "税号 ", "公司代码为"],
    "CN_PASSPORT": ["护照号码：", "护照", "passport ", "护照号是"],
    "CN_LANDLINE": ["座机：", "办公电话", "传真 ", "请致电"],
}
AREA_CODES = ["010", "020", "021", "022", "023", "024", "025", "027", "028", "029", "0311"]
AREA_CODES += ["0351", "0371", "0431", "0451", "0531", "0551", "0571", "0591", "0731", "0755"]
AREA_CODES += ["0769", "0871", "0898"]
REGIONS = sorted(CN_PROVINCES - {71, 81, 82, 83})


class Generator:
    """Valid identifiers and near misses, from one seeded random source."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)

    def digits(self, n: int) -> str:
        return "".join(self.random.choice("0123456789") for _ in range(n))

    def sentence(self) -> str:
        return str(self.fake.sentence(nb_words=self.random.randint(4, 12)))

    def cn_id(self) -> str:
        return str(self.fake.ssn())

    def cn_mobile(self) -> str:
        number = str(self.fake.phone_number())
        layout = self.random.choice(["plain", "plain", "space", "dash", "+86", "+86 space"])
        if layout in ("space", "+86 space"):
            number = f"{number[:3]} {number[3:7]} {number[7:]}"
        elif layout == "dash":
            number = f"{number[:3]}-{number[3:7]}-{number[7:]}"
        return "+86 " + number if layout.startswith("+86") else number

    def bank_card(self) -> str:
        payload = "62" + self.digits(self.random.choice([13, 16]))
        number = payload + luhn_check_digit(payload)
        if self.random.random() < 0.4:
            return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        return number

    def uscc(self) -> str:
        org = "".join(self.random.choice(USCC_ALPHABET) for _ in range(9))
        region = f"{self.random.choice(REGIONS)}{self.digits(4)}"
        first17 = self.random.choice("159Y") + self.random.choice("123") + region + org
        return first17 + uscc_check_char(first17)

    def passport(self) -> str:
        kind = self.random.choice(["E8", "G8", "EL7"])
        if kind == "EL7":
            return "E" + self.random.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + self.digits(7)
        return kind[0] + self.digits(8)

    def landline(self) -> str:
        area = self.random.choice(AREA_CODES)
        width = 8 if len(area) == 3 else self.random.choice([7, 8])
        subscriber = self.random.choice("23456789") + self.digits(width - 1)
        layout = self.random.choice(["dash", "parens", "+86", "ext", "plain"])
        if layout == "parens":
            return f"({area}){subscriber}"
        if layout == "+86":
            return f"+86 {area[1:]} {subscriber}"
        if layout == "ext":
            return f"{area}-{subscriber}转{self.random.randint(1, 9999)}"
        return f"{area}-{subscriber}" if layout == "dash" else area + subscriber

    # near misses: (the type they imitate, the text)
    def broken_cn_id(self) -> str:
        valid = self.cn_id()
        kind = self.random.choice(["check", "date", "short", "long"])
        if kind == "check":
            return valid[:17] + self.random.choice([c for c in "0123456789X" if c != valid[17]])
        if kind == "date":  # month 13 or day 32, with the check char its digits give
            month, day = self.random.choice([("13", valid[12:14]), (valid[10:12], "32")])
            first17 = valid[:10] + month + day + valid[14:17]
            return first17 + cn_id_check_char(first17)
        if kind == "short":
            return valid[:5] + valid[6:]
        return valid[:17] + self.digits(1) + valid[17]

    def broken_bank_card(self) -> str:
        valid = self.bank_card()
        last = valid[-1]
        return valid[:-1] + self.random.choice([c for c in "0123456789" if c != last])

    def broken_uscc(self) -> str:
        valid = self.uscc()
        return valid[:-1] + self.random.choice([c for c in USCC_ALPHABET if c != valid[-1]])

    def broken_mobile(self) -> str:
        number = str(self.fake.phone_number())
        return number[:-1] if self.random.random() < 0.5 else number + self.digits(1)

    def ordinary_number(self) -> str:
        year = self.random.randint(1990, 2030)
        return self.random.choice(
            [
                f"订单号{year}{self.digits(8)}",
                f"金额：{self.random.randint(1, 99)},{self.digits(3)}.{self.digits(2)}元",
                f"{year}年{self.random.randint(1, 12)}月{self.random.randint(1, 28)}日",
                f"{year}-{self.random.randint(1, 12):02d}-{self.random.randint(1, 28):02d} "
                f"{self.random.randint(0, 23):02d}:{self.random.randint(0, 59):02d}:00",
                f"增长{self.random.randint(1, 99)}.{self.digits(1)}%",
                f"版本v{self.random.randint(1, 9)}.{self.random.randint(0, 20)}.{self.digits(1)}",
                f"邮编{self.random.randint(100000, 850000)}",
                f"QQ号{self.random.randint(10000, 999999999)}",
                f"发票号码{self.digits(8)}，代码{self.digits(12)}",
            ]
        )


def chinese_set(per_type: int, seed: int) -> tuple[list[Sample], int, int]:
    """Samples with gold spans; the number of near misses and of ordinary numbers in them."""
    make = Generator(seed)
    valid = {
        "CN_ID": make.cn_id,
        "CN_MOBILE": make.cn_mobile,
        "BANK_CARD": make.bank_card,
        "CN_USCC": make.uscc,
        "CN_PASSPORT": make.passport,
        "CN_LANDLINE": make.landline,
    }
    broken = [make.broken_cn_id, make.broken_bank_card, make.broken_uscc, make.broken_mobile]
    samples: list[Sample] = []
    for entity, build in valid.items():
        for _ in range(per_type):
            samples.append(_sentence_with(make, [(entity, build())]))
    near_misses = 0
    for build_broken in broken:
        for _ in range(per_type // 2):
            samples.append(_sentence_with(make, [(None, build_broken())]))
            near_misses += 1
    for _ in range(per_type):
        samples.append(_sentence_with(make, [(None, make.ordinary_number())]))
    make.random.shuffle(samples)
    return samples, near_misses, per_type


def _sentence_with(make: Generator, parts: list[tuple[str | None, str]]) -> Sample:
    sample = Sample(make.sentence())
    for entity, value in parts:
        label = make.random.choice(LABELS[entity]) if entity else ""
        sample.text += label
        if entity:
            sample.gold.append((entity, len(sample.text), len(sample.text) + len(value)))
        sample.text += value + make.random.choice(["，", "。", "；", " ", "！"]) + make.sentence()
    return sample


# --- (c) real texts without labels ------------------------------------------------------


def unlabelled_texts() -> list[str]:
    cmrc = json.loads((DATASETS / "cmrc2018_dev_squad.json").read_text())
    paragraphs = [p for article in cmrc["data"] for p in article["paragraphs"]]
    texts = sorted({p["context"] for p in paragraphs})
    texts += [q["question"] for p in paragraphs for q in p["qas"]]
    with (DATASETS / "nq_open_dev.jsonl").open() as lines:
        texts += [json.loads(line)["question"] for line in lines]
    with (DATASETS / "banking77_test.csv").open(newline="") as rows:
        texts += [row["text"] for row in csv.DictReader(rows)]
    return texts


def false_alarms(texts: list[str], detector: PiiDetector) -> dict[str, Any]:
    scanner = InjectionScanner()
    pii = [
        {"entity": f.entity, "text": f.text, "context": t[max(0, f.start - 20) : f.end + 10]}
        for t in texts
        for f in detector.detect(t)
    ]
    flags = [
        {"rule": f.rule, "context": t[max(0, f.start - 20) : f.end + 20]}
        for t in texts
        for f in scanner.scan(t)
    ]
    return {"texts": len(texts), "chars": sum(map(len, texts)), "pii": pii, "injection": flags}


# --- scoring -----------------------------------------------------------------------------


def score(
    samples: list[Sample],
    detector: PiiDetector,
    aliases: dict[str, str] | None = None,
    ungated_recall: frozenset[str] = frozenset(),
) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, int]] = {}

    def row(entity: str) -> dict[str, int]:
        return counts.setdefault(entity, {"support": 0, "tp": 0, "fp": 0, "fn": 0})

    for sample in samples:
        found = [
            ((aliases or {}).get(f.entity, f.entity), f.start, f.end)
            for f in detector.detect(sample.text)
        ]
        matched: set[int] = set()
        for entity, start, end in sample.gold:
            row(entity)["support"] += 1
            hit = next(
                (
                    i
                    for i, (e, s, t) in enumerate(found)
                    if i not in matched and e == entity and s < end and t > start
                ),
                None,
            )
            if hit is None:
                row(entity)["fn"] += 1
            else:
                matched.add(hit)
                row(entity)["tp"] += 1
        for i, (entity, _, _) in enumerate(found):
            if i not in matched:
                row(entity)["fp"] += 1
    return {
        entity: _rates(entity, c, entity not in ungated_recall)
        for entity, c in sorted(counts.items())
    }


def _rates(entity: str, c: dict[str, int], gate_recall: bool = True) -> dict[str, Any]:
    target = TARGET_VALIDATED if entity in VALIDATED else TARGET_OTHER
    predicted = c["tp"] + c["fp"]
    precision = c["tp"] / predicted if predicted else None
    recall = c["tp"] / c["support"] if c["support"] else None
    gated = (precision, recall) if gate_recall else (precision,)
    met = all(value is None or value >= target for value in gated)
    return {
        **c,
        "precision": precision,
        "recall": recall,
        "target": target,
        "recall_gated": gate_recall,
        "met": met,
    }


def subtype_accuracy(samples: list[Sample], detector: PiiDetector) -> dict[str, dict[str, int]]:
    """Per entity: the found gold spans, and those whose finding names the right subtype
    (a card's scheme, a phone number's country)."""
    tally: dict[str, dict[str, int]] = {}
    for sample in samples:
        findings = detector.detect(sample.text)
        for (entity, start, end), subtype in zip(sample.gold, sample.subtypes, strict=True):
            hit = next(
                (f for f in findings if f.entity == entity and f.start < end and f.end > start),
                None,
            )
            if hit is None or subtype is None:
                continue
            row = tally.setdefault(entity, {"found": 0, "right": 0})
            row["found"] += 1
            row["right"] += hit.subtype == subtype
    return tally


# A chat prompt of each kind, scanned inline on the event loop (gate.INLINE_SCAN_CHARS).
COST_PROMPTS = {
    "no digits (120 chars)": "Summarise the following paragraph in two sentences and keep "
    "the tone friendly; mention the main risk and what to do about it.",
    "one phone number (80 chars)": "Please call me back at +44 20 7946 0958 tomorrow "
    "morning about my order.",
    "1 kB full of numbers": (
        "Order 1234567890 on 2024-05-06 12:30:00, card 4111 1111 1111 1111, call "
        "(212) 555-0123 or +86 138 1234 5678, total $1,234.56, ref 9876543210. "
    )
    * 7,
}


def cost_per_prompt(detector: PiiDetector, repeat: int = 2000) -> dict[str, float]:
    """Microseconds of detect() per prompt, best of three rounds."""
    out: dict[str, float] = {}
    for name, prompt in COST_PROMPTS.items():
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(repeat):
                detector.detect(prompt)
            best = min(best, (time.perf_counter() - started) / repeat * 1e6)
        out[name] = best
    return out


def throughput(samples: list[Sample], detector: PiiDetector, seconds: float = 1.0) -> float:
    """kB (UTF-8) of text scanned per second by detect(), over repeated passes."""
    size = sum(len(s.text.encode()) for s in samples)
    passes, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for sample in samples:
            detector.detect(sample.text)
        passes += 1
    return size * passes / elapsed / 1000


def print_table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    print(f"\n{title}")
    header = f"{'entity':<13}{'support':>8}{'TP':>6}{'FP':>6}{'FN':>6}"
    print(header + f"{'precision':>11}{'recall':>8}{'target':>8}  met?")
    for entity, r in rows.items():
        print(
            f"{entity:<13}{r['support']:>8}{r['tp']:>6}{r['fp']:>6}{r['fn']:>6}"
            f"{rate(r['precision']):>11}{rate(r['recall']):>8}{r['target']:>8.2f}  "
            f"{'yes' if r['met'] else 'NO'}{'' if r['recall_gated'] else ' (recall not gated)'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-type", type=int, default=200)
    parser.add_argument("--per-scheme", type=int, default=60)
    parser.add_argument("--seed", type=int, default=20261124)
    args = parser.parse_args()
    detector = PiiDetector()

    english, skipped, repairs = presidio_set()
    presidio_rows = score(
        english,
        detector,
        aliases={"BANK_CARD": "CREDIT_CARD"},
        ungated_recall=frozenset({"PHONE"}),
    )
    chinese, near_misses, ordinary = chinese_set(args.per_type, args.seed)
    chinese_rows = score(chinese, detector)
    labelled, negatives = international_set(args.per_scheme, args.per_type, args.seed)
    international = [
        Sample(text, [(e, s, t) for e, s, t, _ in gold], [g[3] for g in gold])
        for text, gold in labelled
    ]
    # A Chinese number is a phone of its more specific type (CN_MOBILE wins its span).
    chinese_phones = {"CN_MOBILE": "PHONE", "CN_LANDLINE": "PHONE"}
    international_rows = score(international, detector, aliases=chinese_phones)
    subtypes = subtype_accuracy(international, detector)

    print_table(f"(a) presidio_generated_small.json: {len(english)} texts", presidio_rows)
    print(
        f"skipped (not detected by modelyard): {', '.join(f'{k} {v}' for k, v in skipped.items())}"
    )
    for repair in repairs:
        print(f"gold offset off: {repair}")
    print_table(
        f"(b) chinese (Faker zh_CN, seed {args.seed}): {len(chinese)} texts, "
        f"{near_misses} near misses, {ordinary} ordinary numbers",
        chinese_rows,
    )
    print_table(
        f"(c) international (seed {args.seed}): {len(international)} texts, "
        f"{negatives} numbers that are neither cards nor phones",
        international_rows,
    )
    for entity, row in subtypes.items():
        what = "scheme" if entity.endswith("CARD") else "country"
        print(f"{entity} {what} right: {row['right']} of {row['found']} found")
    unlabelled = false_alarms(unlabelled_texts(), detector)
    print(
        f"\n(d) unlabelled real texts: {unlabelled['texts']} texts, {unlabelled['chars']} "
        f"characters: {len(unlabelled['pii'])} PII detections, "
        f"{len(unlabelled['injection'])} injection flags (not gated; each listed)"
    )
    for alarm in unlabelled["pii"] + unlabelled["injection"]:
        what = alarm.get("entity") or alarm.get("rule")
        print(f"  {what}: {alarm['context']!r}")
    speeds = {
        "presidio": throughput(english, detector),
        "chinese": throughput(chinese, detector),
        "international": throughput(international, detector),
    }
    print(
        f"\ndetect() throughput: presidio {speeds['presidio']:.0f} kB/s, "
        f"chinese {speeds['chinese']:.0f} kB/s, international "
        f"{speeds['international']:.0f} kB/s (UTF-8, one thread)"
    )
    cost = cost_per_prompt(detector)
    print("detect() per prompt: " + ", ".join(f"{k} {v:.0f} µs" for k, v in cost.items()))
    tables = (presidio_rows, chinese_rows, international_rows)
    met = all(r["met"] for rows in tables for r in rows.values())
    print(f"targets: {'all met' if met else 'NOT all met'}")
    result = {
        "presidio": {"rows": presidio_rows, "skipped": skipped, "offset_repairs": repairs},
        "chinese": {
            "rows": chinese_rows,
            "seed": args.seed,
            "per_type": args.per_type,
            "near_misses": near_misses,
            "ordinary_numbers": ordinary,
        },
        "international": {
            "rows": international_rows,
            "subtypes": subtypes,
            "per_scheme": args.per_scheme,
            "negatives": negatives,
        },
        "unlabelled": unlabelled,
        "throughput_kb_per_s": speeds,
        "detect_us_per_prompt": cost,
        "met": met,
    }
    out = ROOT / "bench" / "results" / "pii.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"wrote {out.relative_to(ROOT)}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
