"""Personal data detection: the Presidio detector against the previous one, in one run.

    .venv/bin/python bench/pii.py [--data ../shared/data] [--planted 400] [--show-unlabeled]
                                  [--scan-rows 20000]

The previous detector is `curation/quality/pii_previous.py` (the patterns and name cues run
bare, as before Presidio); the new one is `curation/quality/pii.py` (the same patterns as
Presidio recognizers with their context checks, and GiNZA's names in Japanese text).

The labeled sample, the same every run (fixed seed), from the shared data:

- English: every distinct text of Tiny Shakespeare (its passages), the KTO chat demo, the DPO
  preference demo (prompts and both answers), the FastChat dummy conversations, the YouTube
  comments and the ViGGO references. Japanese: every distinct instruction, input and output
  of the Japanese Alpaca seed tasks and the Japanese Python tasks.
- Planted, labeled by rule: into `--planted` texts of each language a sentence of ours is
  inserted (before or after the text), holding one or two items of one kind drawn from the
  templates below on a line of its own (names, e-mail addresses, phone numbers, card numbers, IP addresses, IBANs,
  My Numbers, postal codes; some written the way the context checks want, some not). The
  planted items are the labels for recall.
- Found in the real text, labeled by hand: every span that either detector flags outside the
  planted sentences was judged by hand; the verdicts are `HAND`, keyed by (kind, text). A
  finding with no verdict is counted as unlabeled and listed with --show-unlabeled.

A finding is right when it overlaps a label of its kind (planted), or its verdict is yes
(real text). Precision is over every finding; recall is over the planted items only (personal
data in the real text that neither detector flags, such as most names in Shakespeare, is in
no label). Times are the wall clock over all the texts of a language, per 1,000 texts, after
Presidio is imported and GiNZA loaded (their one-time cost is printed apart).

With --scan-rows N, both detectors are also timed over the messages of the N examples that
bench/quality_scan.py checks (its user turns, 4% of them Japanese, and its answers): the
personal data stage of the quality check, without the database.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
DEFAULT_DATA = ROOT.parent / "shared" / "data"
KINDS = ("name", "email", "phone", "credit_card", "ip_address", "iban", "my_number", "postal_code")

# --- what is planted --------------------------------------------------------------------------

FIRST = ["James", "Mary", "Robert", "Linda", "Michael", "Sarah", "David", "Emily", "Daniel", "Laura"]
LAST = ["Walker", "Bennett", "Hughes", "Foster", "Griffin", "Palmer", "Sullivan", "Harper", "Lawson", "Fletcher"]
FAMILY = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山口",
    "斎藤",
    "松井",
    "木村",
]
GIVEN = ["太郎", "花子", "健太", "美咲", "大輔", "陽子", "翔太", "由美", "直樹", "恵子", "拓也", "彩"]
KATAKANA = ["ジョン・スミス", "エミリー・ブラウン", "マイケル・ジョーンズ", "サラ・ミラー", "デビッド・ウィルソン"]

# {a} and {b} are the planted items; one template, one kind.
TEMPLATES: dict[str, dict[str, list[str]]] = {
    "en": {
        "name": [
            "My name is {a}.",
            "I'm {a}, the new manager.",
            "Please ask Dr. {a} about it.",
            "Mr. {a} will call you back.",
            "{a} will join the call tomorrow.",
            "Thanks again, {a}!",
            "Send the report to {a} and {b}.",
        ],
        "email": ["You can reach me at {a}.", "Send the invoice to {a} please.", "Contact: {a}"],
        "phone": ["Call me on {a} after 5pm.", "My number is {a}.", "Phone: {a}"],
        "credit_card": ["My card number is {a}.", "Please charge {a} for the order.", "Visa {a}, expiry 12/27."],
        "ip_address": ["The server at {a} is down.", "Requests came from {a} last night."],
        "iban": ["Please transfer the deposit to IBAN {a}.", "My account: {a}"],
        "my_number": ["My Number: {a}", "My individual number is {a}."],
        "postal_code": ["Ship it to 〒{a} Tokyo.", "Zip code {a}, Japan."],
    },
    "ja": {
        "name": [
            "{a}さんに連絡してください。",
            "{a}様宛てにお送りします。",
            "はじめまして、{a}と申します。",
            "私の名前は{a}です。",
            "昨日、{a}が来ました。",
            "担当は{a}です。",
            "{a}から連絡があります。",
            "{a}と{b}が会議に参加します。",
            "詳しくは{a}までお問い合わせください。",
            "この資料は{a}が作成しました。",
            "会議の議事録を{a}に送ってください。",
            "{a}が来日した。",
        ],
        "email": ["連絡先は{a}です。", "メール：{a}まで"],
        "phone": ["携帯は{a}です。", "電話：{a}", "お問い合わせは{a}まで。"],
        "credit_card": ["カード番号は{a}です。", "{a}で決済しました。"],
        "ip_address": ["アクセス元は{a}でした。"],
        "iban": ["振込先：{a}"],
        "my_number": ["マイナンバーは{a}です。", "個人番号：{a}", "{a}（マイナンバー）を記入してください。"],
        "postal_code": [
            "〒{a} 東京都新宿区",
            "郵便番号は{a}です。",
            "住所：{a} 大阪府大阪市",
            "送り先は{a}の住所です。",
        ],
    },
}
# How often each kind is planted: names, the point of GiNZA, more than the rest.
WEIGHTS = {"name": 4, "email": 1, "phone": 1, "credit_card": 1, "ip_address": 1, "iban": 1, "my_number": 1}
WEIGHTS["postal_code"] = 1


def full_width(text: str) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)


def luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    from curation.quality.pii_patterns import luhn_valid

    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def card(rng: random.Random) -> str:
    if rng.random() < 0.2:
        digits = luhn_complete(rng.choice(["34", "37"]), 15, rng)
        groups = [digits[:4], digits[4:10], digits[10:]]
    else:
        digits = luhn_complete(rng.choice(["4", "51", "55", "35"]), 16, rng)
        groups = [digits[i : i + 4] for i in range(0, 16, 4)]
    return rng.choice([" ".join(groups), "-".join(groups), digits, digits])


def iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18)])
    bban = ("WEST" if country == "GB" else "ABNA" if country == "NL" else "") + "".join(
        rng.choice("0123456789") for _ in range(length - 4 - (4 if country in ("GB", "NL") else 0))
    )
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    compact = f"{country}{98 - int(numeric) % 97:02d}{bban}"
    return compact if rng.random() < 0.5 else " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def my_number(rng: random.Random) -> str:
    from curation.quality.pii_patterns import my_number_check_digit

    first = "".join(rng.choice("0123456789") for _ in range(11))
    digits = first + str(my_number_check_digit(first))
    return rng.choice([digits, f"{digits[:4]} {digits[4:8]} {digits[8:]}", f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"])


def phone(rng: random.Random, language: str) -> str:
    n = lambda k: "".join(rng.choice("0123456789") for _ in range(k))  # noqa: E731
    if language == "en":
        return rng.choice(
            [f"(555) {rng.randint(200, 999)}-{n(4)}", f"555-{rng.randint(200, 999)}-{n(4)}",
             f"+1 (555) {rng.randint(200, 999)}-{n(4)}", f"+44 20 7946 {n(4)}", f"+81 90-{n(4)}-{n(4)}"]
        )  # fmt: skip
    return rng.choice(
        [f"090-{n(4)}-{n(4)}", f"080{n(8)}", f"03-{n(4)}-{n(4)}", f"06({n(4)}){n(4)}", f"0120-{n(3)}-{n(3)}",
         full_width(f"090-{n(4)}-{n(4)}")]
    )  # fmt: skip


def value(kind: str, language: str, rng: random.Random) -> str:
    if kind == "name":
        if language == "en":
            return rng.choice([f"{rng.choice(FIRST)} {rng.choice(LAST)}", rng.choice(LAST), rng.choice(FIRST)])
        return rng.choice(
            [rng.choice(FAMILY) + rng.choice(GIVEN), rng.choice(FAMILY), rng.choice(FAMILY), rng.choice(KATAKANA)]
        )
    if kind == "email":
        local = rng.choice(["taro.yamada", "hanako", "j.walker", "mary_b", "support", "k.sato"])
        found = f"{local}@{rng.choice(['example.com', 'mail.example.co.jp', 'example.org', 'example.net'])}"
        return full_width(found) if language == "ja" and rng.random() < 0.2 else found
    if kind == "phone":
        return phone(rng, language)
    if kind == "credit_card":
        return card(rng)
    if kind == "ip_address":
        v4 = f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        return rng.choice([v4, v4, f"2001:db8::{rng.randint(1, 0xFFFF):x}:{rng.randint(1, 0xFFFF):x}"])
    if kind == "iban":
        return iban(rng)
    if kind == "my_number":
        return my_number(rng)
    code = f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"
    return full_width(code) if language == "ja" and rng.random() < 0.2 else code


# --- the sample -------------------------------------------------------------------------------


@dataclass
class Example:
    language: str
    text: str
    planted: tuple[int, int] | None = None  # where the planted sentence is
    labels: list[tuple[str, int, int]] = field(default_factory=list)


def english_texts(data: Path) -> list[str]:
    texts = (data / "tinyshakespeare" / "input.txt").read_text(encoding="utf-8").split("\n\n")
    for record in json.loads((data / "chat" / "kto_en_demo.json").read_text(encoding="utf-8")):
        texts.extend(m["content"] for m in record["messages"])
    for record in json.loads((data / "chat" / "fastchat_dummy_conversation.json").read_text(encoding="utf-8")):
        texts.extend(m["value"] for m in record["conversations"])
    for record in json.loads((data / "preferences" / "dpo_en_demo.json").read_text(encoding="utf-8")):
        texts.extend([*(m["value"] for m in record["conversations"]), record["chosen"]["value"]])
        texts.append(record["rejected"]["value"])
    for path in sorted((data / "youtube_spam").glob("Youtube0*.csv")):
        with open(path, encoding="utf-8", newline="") as f:
            texts.extend(row["CONTENT"] for row in csv.DictReader(f))
    with open(data / "viggo" / "train.csv", encoding="utf-8", newline="") as f:
        texts.extend(row["ref"] for row in csv.DictReader(f))
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))


def japanese_texts(data: Path) -> list[str]:
    texts = []
    for name in ("ja_alpaca_seed_175.json", "ja_amenokaku_python_alpaca.json"):
        for record in json.loads((data / "japanese_instructions" / name).read_text(encoding="utf-8")):
            texts.extend(record[key] for key in ("instruction", "input", "output"))
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))


def plant(example: Example, rng: random.Random) -> None:
    language = example.language
    kind = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    template = rng.choice(TEMPLATES[language][kind])
    sentence, labels = "", []
    for part in re.split(r"(\{[ab]\})", template):
        if part in ("{a}", "{b}"):
            item = value(kind, language, rng)
            labels.append((kind, len(sentence), len(sentence) + len(item)))
            part = item
        sentence += part
    joiner = "\n"  # a line of its own, as a line added to a message
    if rng.random() < 0.5:
        offset, example.text = 0, sentence + joiner + example.text
    else:
        offset = len(example.text) + len(joiner)
        example.text = example.text + joiner + sentence
    example.planted = (offset, offset + len(sentence))
    example.labels = [(k, offset + s, offset + e) for k, s, e in labels]


def sample(data: Path, planted: int, seed: int = 23) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for language, texts in (("en", english_texts(data)), ("ja", japanese_texts(data))):
        these = [Example(language, text) for text in texts]
        for example in rng.sample(these, planted):
            plant(example, rng)
        examples.extend(these)
    return examples


# --- judging ----------------------------------------------------------------------------------

# Findings in the real text, judged by hand: (kind, text) -> is it that kind of personal data?
# Names of people and of characters (fiction, history, public figures) are names; names of
# products, games, companies and AI assistants are not. Addresses at example.com are e-mail
# addresses. Sums, ranges and identifiers that happen to pass a check are not numbers of people.
# People and characters, real or fictional (Shakespeare's, a novel's, a sitcom's), in English
# text and Japanese; split on "|".
_YES_NAMES = (
    "Bennet|Caius Marcius|Christophero Sly|Crews|Daniel Kadouch|Darcy|De Gucht|Dylan|Elbow|Gatsby|"
    "George Cathcart|George|James Franck|Jenny|Jones|Lucio|Menenius|Paul Grady|Peterson|Smith|Spengler|"
    "Thomas Mowbray|Yuliya"
    "|"
    "アリソン|イアン・フレミング|エヴァン・トレーシー|サックス・ローメル|サラ|ショーン・コネリー|"
    "ジェフリー・ヒントン|ジェームズ|ジェーン|ジュリアス・シーザー|ジュリアーニ|ジョン|"
    "ジョン・マッカーシー|ジョージ・ワシントン|スウィフト|テイラー・アリソン|テイラー・スウィフト|"
    "デューク・エリントン|トレイシー|トレーシー|ニール・アームストロング|バラク|ヒラリー・クリントン|"
    "フランツ・リスト|フレミング|マイケルジョーダン|マイケル・ジョーダン|マサシ|ミケランジェロ|"
    "ミシェル・オバマ|ヤオ・ミン|ヤン・ルクン|ヨシュア・ベンジオ|リチャードソン|ルディ・ジュリアーニ|"
    "ロジャー|ロムニー|大谷翔平|岸本斉史|柯庆施"
).split("|")
# Not people: titles of shows and series, products, places, companies, an AI assistant, a
# curse, an exercise, a pun on 冗談, methods named after their authors (大津の二値化,
# 田村のアルゴリズム), words (高階関数, 心深い, 物質的), an office (Mr. President).
_NO_NAMES = (
    "Earl|Free Fire|President|Superficiality|Vicuna|"
    "インテル|カタール|クソッタレ|サイド・プランク|ジョナサン・ケープ|ジョーダン|ドーハ|ナルト|"
    "ニューヨーク|ハリー・ポッターシリーズ|フロリダ州|ワシントン|大津|心深い|物質的|田村|看護婦|"
    "高階|高階関数|尽管"
).split("|")
HAND: dict[tuple[str, str], bool] = {
    **{("name", name): True for name in _YES_NAMES},
    **{("name", name): False for name in _NO_NAMES},
    # e-mail addresses, whoever they belong to; not a password in an FTP URL
    **{("email", address): True for address in (
        "alerts@info6.citi.com", "emoore@email.com", "receivetestmail@gmail.com", "recipient@example.com",
        "sendanonymous90@gmail.com", "your_email@example.com",
    )},
    ("email", "password@ftp.example.com"): False,
    ("ip_address", "0.0.0.0"): True,
    ("ip_address", "127.0.0.1"): True,
    # a UK mobile and a Dutch mobile in YouTube comments; a sum's addend
    ("phone", "+447935454150"): True,
    ("phone", "0687119038"): True,
    ("phone", "+960397912423686"): False,
    # sums in worked arithmetic; a calorie range; the end of a phone number, (123) 456-7891
    ("credit_card", "4212883012996"): False,
    ("my_number", "198472480000"): False,
    ("my_number", "355909189317"): False,
    ("postal_code", "500-1000"): False,
    ("postal_code", "456-7891"): False,
}  # fmt: skip


@dataclass
class Tally:
    labels: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    right: Counter[str] = field(default_factory=Counter)
    recalled: Counter[str] = field(default_factory=Counter)
    unlabeled: list[tuple[str, str, str]] = field(default_factory=list)


def judge(example: Example, findings: list, tally: Tally) -> None:
    hit = set()
    for f in findings:
        tally.found[f.kind] += 1
        label = next(
            (i for i, (k, s, e) in enumerate(example.labels) if k == f.kind and s < f.end and f.start < e), None
        )
        if label is not None:
            tally.right[f.kind] += 1
            hit.add(label)
            continue
        if example.planted and example.planted[0] < f.end and f.start < example.planted[1]:
            continue  # inside our sentence, and not what we planted
        verdict = HAND.get((f.kind, f.text))
        if verdict is None:
            context = example.text[max(0, f.start - 40) : f.end + 20].replace("\n", " ")
            tally.unlabeled.append((f.kind, f.text, context))
        tally.right[f.kind] += bool(verdict)
    for i, (kind, _, _) in enumerate(example.labels):
        tally.labels[kind] += 1
        tally.recalled[kind] += i in hit


def run(detect: Callable[[str], list], examples: list[Example]) -> tuple[float, list[list]]:
    started = time.perf_counter()
    found = [detect(example.text) for example in examples]
    return time.perf_counter() - started, found


def warm_up() -> float:
    """Import Presidio and load GiNZA: the new detector's one-time cost, in seconds."""
    from curation.quality import pii

    started = time.perf_counter()
    pii.detect("Mr. Warmup, warm@example.com, 090-0000-0000. 準備運動の山田です。")
    pii._candidates.cache_clear()
    return time.perf_counter() - started


def ratio(a: int, b: int) -> str:
    return f"{a / b:6.1%}" if b else "     -"


def table(language: str, tallies: dict[str, Tally]) -> list[str]:
    old, new = tallies["previous"], tallies["presidio"]
    lines = [
        f"| {language} kind | planted | previous: found | precision | recall | Presidio: found | precision | recall |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in (*KINDS, "all"):
        pick = (lambda c: sum(c.values())) if kind == "all" else (lambda c, k=kind: c[k])
        row = [kind, str(pick(old.labels))]
        for t in (old, new):
            row += [str(pick(t.found)), ratio(pick(t.right), pick(t.found)), ratio(pick(t.recalled), pick(t.labels))]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def scan_times(rows: int, data: Path) -> str:
    """Both detectors over the messages of bench/quality_scan.py's examples."""
    from bench.dedupe import corpus
    from bench.quality_scan import ANSWERS, PII
    from curation.quality import pii, pii_ginza, pii_previous

    texts, _ = corpus(rows, data)
    rng = random.Random(3)  # as bench/quality_scan.py draws them
    messages = []
    for text in texts:
        messages += [text + (rng.choice(PII) if rng.random() < 0.02 else ""), rng.choice(ANSWERS)]
    pii._candidates.cache_clear()
    pii_ginza._found.clear()  # its Japanese sentences come from the texts read above
    seconds = {name: run(detect, [Example("", m) for m in messages])[0] for name, detect in
               (("previous", pii_previous.detect), ("Presidio", pii.detect))}  # fmt: skip
    return f"quality check's {rows:,} examples ({len(messages):,} messages): " + ", ".join(
        f"{name} {s:.1f} s" for name, s in seconds.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--planted", type=int, default=400, help="texts of each language with a planted sentence")
    parser.add_argument("--show-unlabeled", action="store_true")
    parser.add_argument("--scan-rows", type=int, default=0, help="also time both on the quality check's examples")
    args = parser.parse_args()
    if not (args.data / "tinyshakespeare").is_dir():
        print(f"skipped: no shared data at {args.data}")
        return

    import django

    django.setup()
    from curation.quality import pii, pii_previous

    examples = sample(args.data, args.planted)
    load = warm_up()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"one-time: importing Presidio and loading GiNZA {load:.1f} s\n")
    detectors = {"previous": pii_previous.detect, "presidio": pii.detect}
    for language in ("en", "ja"):
        these = [e for e in examples if e.language == language]
        tallies, seconds = {}, {}
        for name, detect in detectors.items():
            seconds[name], found = run(detect, these)
            tallies[name] = Tally()
            for example, findings in zip(these, found, strict=True):
                judge(example, findings, tallies[name])
        planted = sum(1 for e in these if e.planted)
        characters = sum(len(e.text) for e in these)
        print(f"{language}: {len(these):,} texts ({planted} with a planted sentence), {characters:,} characters")
        print("\n".join(table(language, tallies)))
        per_1000 = {name: 1000 * s / len(these) for name, s in seconds.items()}
        print(
            f"time per 1,000 texts: previous {per_1000['previous']:.2f} s, Presidio {per_1000['presidio']:.2f} s "
            f"({per_1000['presidio'] / per_1000['previous']:.1f}x)"
        )
        unlabeled = {(k, t, c) for tally in tallies.values() for k, t, c in tally.unlabeled}
        print(f"findings in the real text with no verdict: {len(unlabeled)}\n")
        if args.show_unlabeled:
            for kind, text, context in sorted(unlabeled):
                print(f"    ({kind!r}, {text!r}): ...  # {context}")
    if args.scan_rows:
        print(scan_times(args.scan_rows, args.data))


if __name__ == "__main__":
    main()
