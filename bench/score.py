"""Scoring throughput of tensionwatch's rules on one core, against one regex per term.

What it measures, in one process (Python runs the scorer on one core):

* ours      - `rules = compile_topics(config.topics)` once (timed apart), then
              `score_story(rules, title, summary, language)` for every story: it folds the
              text and scores every topic of config.yaml in one regex pass.
* baseline  - the naive way, as in bench/cycle.py: one compiled regex per term
              (`cycle.naive_rules`), each run with re.findall over title + " " + summary
              (`cycle.naive_score`). It is timed on the first --baseline-stories stories of
              each corpus (default 5,000: it is ~70x slower); its rate is per story, so a
              sample gives the same stories/s.

Corpora:

* stream    - --stories (default 20,000) generated news-stream stories, fixed seed: title 8-14
              words, summary 25-45 words, in the proportions of bench/cycle.py's make_item
              (10% name every actor group of one topic, 20% one actor, the rest ordinary;
              one in five in Turkish). The summary is clean text, as stored and scored.
* mixed     - the same recipe in six languages in turn: English, Turkish, Persian, Hebrew,
              Russian, Arabic (MORE_LANGUAGES: team-written words, with the clitics, endings
              and inflections each press writes), scored against every topic.
* on-topic  - tests/data/labelled_news.jsonl repeated to at least --stories stories. Every item
              names the topics' countries: a worst case for a matcher that is quick on misses.
* --corpus  - optional, any JSONL with title, summary, language (e.g.
              ../shared/realdata/news-dev.jsonl), repeated the same way. Only figures are
              printed, never its text.

Each corpus is timed --repeat times (default 5), ours and the baseline in turn; medians are
reported in stories/s with the ratio, against the issue's target of >= 50,000 stories/s per
core with the default rules.

Run (from the project root, with the project's venv):

    .venv/bin/python bench/score.py [--stories 20000 --repeat 5 --seed 20240821]
    .venv/bin/python bench/score.py --corpus ../shared/realdata/news-dev.jsonl
    .venv/bin/python bench/score.py --profile     # cProfile of ours on the stream, top functions

No network is used.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import cycle  # noqa: E402  bench/cycle.py: naive baseline, vocabulary, proportions
import yaml  # noqa: E402

from tensionwatch.config import load_config  # noqa: E402
from tensionwatch.parse import parse_feed  # noqa: E402
from tensionwatch.score import CompiledRules, compile_topics, score_story  # noqa: E402

TARGET = 50_000  # stories/s per core with the default rules (the target)
LABELLED = ROOT / "tests" / "data" / "labelled_news.jsonl"

Story = tuple[str, str, str]  # title, summary, language


# -- corpora ----------------------------------------------------------------------------------


def make_story(rng: random.Random, lang: str) -> Story:
    """One news-stream story as stored: clean title and summary text, and its language.

    The same recipe as cycle.make_item (same vocabulary, actor and signal words, shares),
    without the RSS wrapping, which the scorer never sees. Languages other than English and
    Turkish take their words from MORE_LANGUAGES.
    """
    if lang in MORE_LANGUAGES:
        vocab, topics = MORE_LANGUAGES[lang]
    else:
        vocab, topics = (cycle.TR_WORDS if lang == "tr" else cycle.EN_WORDS), cycle.TOPICS[lang]
    title = cycle._words(rng, vocab, 8, 14)
    body = cycle._words(rng, vocab, 25, 45)
    roll = rng.random()
    if roll < cycle.BOTH_ACTORS_SHARE + cycle.ONE_ACTOR_SHARE:
        groups, signals = topics[rng.choice(["iran_israel", "tr_ru"])]
        if roll < cycle.BOTH_ACTORS_SHARE:
            # One actor in the headline, the other groups and 1-3 signals in the summary.
            title[rng.randrange(len(title))] = rng.choice(groups[0])
            extra = [rng.choice(g) for g in groups[1:]] + rng.sample(signals, rng.randint(1, 3))
            del body[: len(extra)]
            cycle._sprinkle(rng, body, extra)
        else:
            body[rng.randrange(len(body))] = rng.choice(rng.choice(groups))
    title[0] = title[0].capitalize()
    return " ".join(title), " ".join(body) + ".", lang


# The languages of issue "Read the news in the languages it happens in", as a reporter writes
# them: ordinary words, and actor and signal words with their clitics, endings and inflections
# (so the clitic and suffix paths of the matcher are exercised). Written for this bench.
# fmt: off
MORE_LANGUAGES = {
    "fa": (
        ["دولت", "روز", "گزارش", "گفت", "کرد", "شد", "این", "در", "از", "به", "با", "برای", "که", "را", "خبر", "مردم", "شهر", "سال", "هفته", "امروز", "اقتصاد", "بازار", "قیمت", "مجلس", "وزیر", "رئیس", "جمهور", "نشست", "برنامه", "طرح", "مرکز", "استان", "کشور", "جهان"],
        {"iran_israel": ([["ایران", "ایرانی", "تهران", "سپاه پاسداران", "جمهوری اسلامی"],
                          ["اسرائیل", "اسرائیلی‌ها", "رژیم صهیونیستی", "تل‌آویو"]],
                         ["حمله", "حمله‌های", "موشک", "پهپاد", "تهدید", "انتقام", "آتش‌بس"]),
         "tr_ru": ([["ترکیه", "ترکیه‌ای", "آنکارا"], ["روسیه", "مسکو", "روسی"],
                    ["تحریم", "تحریم‌های", "کالاهای دوکاربردی", "صادرات مجدد"]],
                   ["پرداخت", "هشدار", "فشار", "نگرانی"])},
    ),
    "he": (
        ["הממשלה", "היום", "אמר", "אמרה", "על", "של", "את", "עם", "לפי", "כי", "גם", "הוא", "היא", "שנה", "שבוע", "בעיר", "המדינה", "הכנסת", "שר", "ראש", "דיון", "תוכנית", "כלכלה", "שוק", "מחיר", "ציבור", "עולם", "חדשות", "מקור", "דיווח"],
        {"iran_israel": ([["איראן", "באיראן", "מטהרן", "האיראני", "משמרות המהפכה"],
                          ["ישראל", "בישראל", 'צה"ל', "לישראל", "נתניהו"]],
                         ["תקיפה", "טילים", "כטב\"ם", "איום", "נקמה", "הפסקת אש"]),
         "tr_ru": ([["טורקיה", "מטורקיה", "הטורקית", "אנקרה"], ["רוסיה", "לרוסיה", "מוסקבה"],
                    ["סנקציות", "עיצומים", "שימוש כפול", "יצוא"]],
                   ["תשלומים", "אזהרה", "לחץ", "חשש"])},
    ),
    "ru": (
        ["правительство", "сегодня", "заявил", "заявила", "по", "в", "на", "с", "для", "что", "это", "также", "год", "неделя", "город", "страна", "министр", "глава", "совещание", "программа", "экономика", "рынок", "цены", "мир", "новости", "источник"],
        {"iran_israel": ([["Иран", "Ирана", "Ираном", "Тегеран", "КСИР", "иранский"],
                          ["Израиль", "Израиля", "израильские", "ЦАХАЛ", "Нетаньяху"]],
                         ["удар", "ракеты", "беспилотник", "угроза", "возмездие", "перемирие"]),
         "tr_ru": ([["Турция", "Турции", "турецкие", "Анкара"], ["Россия", "России", "Москва"],
                    ["санкции", "санкций", "двойного назначения", "реэкспорт"]],
                   ["платежи", "предупредил", "давление", "опасения"])},
    ),
    "ar": (
        ["الحكومة", "اليوم", "قال", "قالت", "في", "من", "إلى", "على", "مع", "أن", "هذا", "العام", "الأسبوع", "المدينة", "البلاد", "الوزير", "الرئيس", "اجتماع", "برنامج", "الاقتصاد", "السوق", "الأسعار", "العالم", "الأخبار", "مصدر"],
        {"iran_israel": ([["إيران", "الإيراني", "طهران", "الحرس الثوري", "لإيران"],
                          ["إسرائيل", "بإسرائيل", "الاحتلال", "تل أبيب", "نتنياهو"]],
                         ["هجوم", "صواريخ", "مسيرة", "تهديد", "الرد", "وقف إطلاق النار"]),
         "tr_ru": ([["تركيا", "التركية", "أنقرة"], ["روسيا", "لروسيا", "موسكو"],
                    ["العقوبات", "عقوبات", "الاستخدام المزدوج", "إعادة التصدير"]],
                   ["المدفوعات", "حذرت", "ضغوط", "مخاوف"])},
    ),
}
# fmt: on
MIXED = ["en", "tr", "fa", "he", "ru", "ar"]


def mixed_corpus(stories: int, seed: int) -> list[Story]:
    rng = random.Random(seed)
    return [make_story(rng, MIXED[n % len(MIXED)]) for n in range(stories)]


def stream_corpus(stories: int, seed: int) -> list[Story]:
    rng = random.Random(seed)
    # One story in five is Turkish, as one feed in five is in bench/cycle.py.
    return [make_story(rng, cycle.feed_language(n)) for n in range(stories)]


def jsonl_corpus(path: Path, at_least: int) -> tuple[list[Story], int]:
    """(title, summary, language) of every line, repeated to at least `at_least` stories."""
    items = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                item = json.loads(line)
                items.append(
                    (item.get("title") or "", item.get("summary") or "", item.get("language"))
                )
    if not items:
        raise SystemExit(f"{path}: no stories")
    copies = -(-at_least // len(items))  # ceiling division
    return items * copies, len(items)


def feeds_corpus(folder: Path, at_least: int) -> tuple[list[Story], int]:
    """Stories of every RSS/Atom file in a folder, parsed and cleaned as the cycle does."""
    items = []
    for path in sorted(folder.glob("*.xml")):
        parsed = parse_feed("bench", "https://feeds.example.com/", "en", path.read_bytes(), {},
                            datetime.now(UTC))  # fmt: skip
        items += [(s.title, s.summary, s.language) for s in parsed.stories]
    if not items:
        raise SystemExit(f"{folder}: no feed files with stories")
    copies = -(-at_least // len(items))
    return items * copies, len(items)


# -- the two scorers --------------------------------------------------------------------------


def ours(rules: CompiledRules) -> Callable[[list[Story]], list]:
    def run(stories: list[Story]) -> list:
        # Results are kept (as the cycle keeps them), so nothing is cheaper than in real use.
        return [score_story(rules, title, summary, lang) for title, summary, lang in stories]

    return run


def naive(topics: dict) -> Callable[[list[Story]], list]:
    rules = cycle.naive_rules(topics)
    groups = {name: len(topic["actors"]) for name, topic in topics.items()}

    def run(stories: list[Story]) -> list:
        return [
            cycle.naive_score(rules, groups, f"{title} {summary}") for title, summary, _ in stories
        ]

    return run


def timed(run: Callable[[list[Story]], list], stories: list[Story]) -> tuple[float, list]:
    start = time.perf_counter()
    results = run(stories)
    return time.perf_counter() - start, results


def relevant_shares(ours_results: list, naive_results: list, topics: Iterable[str]) -> str:
    """How often each scorer called a story relevant, per topic (a sanity check, not a score)."""
    parts = []
    for i, topic in enumerate(topics):
        mine = sum(r[i].relevant for r in ours_results) / len(ours_results)
        theirs = sum(r[topic][1] for r in naive_results) / len(naive_results)
        parts.append(f"{topic} {mine:.1%} ours / {theirs:.1%} baseline")
    return ", ".join(parts)


# -- measurement ------------------------------------------------------------------------------


def measure(name: str, stories: list[Story], scorers: dict, args: argparse.Namespace) -> dict:
    """--repeat rounds of ours on every story and the baseline on its sample; rates per round."""
    sample = stories if args.baseline_stories <= 0 else stories[: args.baseline_stories]
    scorers["ours"](stories[:500])  # warm-up: first-call costs are not per-story costs
    rates: dict[str, list[float]] = {"ours": [], "baseline": []}
    for run in range(1, args.repeat + 1):
        # The last round's results go before this round starts: the cycle holds one batch of
        # scores at a time, and more live objects would slow the garbage collector's passes.
        ours_results = naive_results = []
        t_ours, ours_results = timed(scorers["ours"], stories)
        t_naive, naive_results = timed(scorers["baseline"], sample)
        rates["ours"].append(len(stories) / t_ours)
        rates["baseline"].append(len(sample) / t_naive)
        print(f"  {name} run {run}: ours {len(stories)} stories in {t_ours:.3f} s "
              f"({rates['ours'][-1]:,.0f}/s); baseline {len(sample)} in {t_naive:.2f} s "
              f"({rates['baseline'][-1]:,.0f}/s)", flush=True)  # fmt: skip
    shares = relevant_shares(ours_results[: len(sample)], naive_results, scorers["topics"])
    print(f"  {name}: relevant on the baseline's sample: {shares}", flush=True)
    return {
        "name": name,
        "stories": len(stories),
        "sample": len(sample),
        "ours": statistics.median(rates["ours"]),
        "baseline": statistics.median(rates["baseline"]),
        "runs_ours": rates["ours"],
        "runs_baseline": rates["baseline"],
    }


def report(results: list[dict], args: argparse.Namespace, compile_s: float) -> None:
    print(f"\nMedians of {args.repeat} runs, one process (one core), default rules "
          f"(compile_topics once: {compile_s * 1000:.0f} ms, not counted):\n")  # fmt: skip
    print("| corpus | stories | ours (stories/s) | baseline (stories/s) | ours / baseline "
          f"| target >= {TARGET:,}/s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---|")
    for r in results:
        verdict = "met" if r["ours"] >= TARGET else "MISSED"
        print(f"| {r['name']} | {r['stories']:,} | {r['ours']:,.0f} | {r['baseline']:,.0f} "
              f"| {r['ours'] / r['baseline']:.0f}x | {verdict} |")  # fmt: skip
    print()
    for r in results:
        print(f"all runs, {r['name']}: ours "
              f"{', '.join(f'{v:,.0f}' for v in r['runs_ours'])}; baseline (on {r['sample']:,}) "
              f"{', '.join(f'{v:,.0f}' for v in r['runs_baseline'])}")  # fmt: skip


def profile(rules: CompiledRules, stories: list[Story]) -> None:
    """cProfile of ours on the stream corpus: where a story's time goes (slowed by profiling)."""
    profiler = cProfile.Profile()
    profiler.runcall(ours(rules), stories)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, default=20_000, help="stories per corpus (at least)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20240821)
    parser.add_argument("--baseline-stories", type=int, default=5_000,
                        help="stories the baseline is timed on per round (0 = all)")  # fmt: skip
    parser.add_argument(
        "--corpus", type=Path, help="also time this JSONL (title, summary, language)"
    )
    parser.add_argument(
        "--feeds-dir", type=Path, help="also time the stories of the RSS/Atom files in this folder"
    )
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--profile", action="store_true", help="cProfile ours on the stream")
    args = parser.parse_args()

    config = load_config(args.config)
    start = time.perf_counter()
    rules = compile_topics(config.topics)
    compile_s = time.perf_counter() - start
    stream = stream_corpus(args.stories, args.seed)
    if args.profile:
        profile(rules, stream)
        return 0

    on_topic, distinct = jsonl_corpus(LABELLED, args.stories)
    corpora = [
        (f"stream (seed {args.seed})", stream),
        (
            f"mixed-language stream: {', '.join(MIXED)} in turn",
            mixed_corpus(args.stories, args.seed),
        ),
        (f"on-topic: labelled_news.jsonl ({distinct} items, repeated)", on_topic),
    ]
    if args.corpus:
        extra, distinct = jsonl_corpus(args.corpus, args.stories)
        corpora.append((f"--corpus {args.corpus.name} ({distinct} items, repeated)", extra))
    if args.feeds_dir:
        extra, distinct = feeds_corpus(args.feeds_dir, args.stories)
        corpora.append((f"--feeds-dir {args.feeds_dir.name} ({distinct} stories, repeated)", extra))

    # The baseline reads the same config.yaml as written (as bench/cycle.py's baseline does).
    raw_topics = yaml.safe_load(args.config.read_text(encoding="utf-8"))["topics"]
    scorers = {"ours": ours(rules), "baseline": naive(raw_topics), "topics": list(config.topics)}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs (shared), "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {len(config.topics)} topics, "
          f"{sum(len(m.terms) for m in rules)} terms; baseline: "
          f"{'all stories' if args.baseline_stories <= 0 else f'first {args.baseline_stories:,} stories'}"
          f" of each corpus", flush=True)  # fmt: skip
    results = [measure(name, stories, scorers, args) for name, stories in corpora]
    report(results, args, compile_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
