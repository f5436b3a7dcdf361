"""Long Telegram texts and captions are split into pieces that are each valid Telegram HTML.

Telegram refuses a whole message ("can't parse entities") when it is cut inside
`&amp;` or a tag, or leaves a tag open. Every piece here is checked with
html.parser against the tags and entities the Bot API allows, measured against
its limit, and the pieces together must say what the text said.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
from html.parser import HTMLParser

import pytest

from bot.notify.telegram import CAPTION_LIMIT, MESSAGE_LIMIT, split_html

# The Bot API's HTML: these tags with these attributes, and only these entities.
ALLOWED = {"b": set(), "strong": set(), "i": set(), "em": set(), "u": set(), "ins": set(), "s": set(),
           "strike": set(), "del": set(), "span": {"class"}, "tg-spoiler": set(), "a": {"href"},
           "code": {"class"}, "pre": set(), "blockquote": {"expandable"}}
ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")


class TelegramHTML(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED:
            self.problems.append(f"tag <{tag}> not allowed")
            return
        for name, value in attrs:
            if name not in ALLOWED[tag]:
                self.problems.append(f"attribute {name} not allowed on <{tag}>")
        if tag == "span" and dict(attrs).get("class") != "tg-spoiler":
            self.problems.append("<span> without class=tg-spoiler")
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_startendtag(self, tag, attrs):
        self.problems.append(f"self-closing <{tag}/>")

    def handle_entityref(self, name):
        if name not in ("lt", "gt", "amp", "quot"):
            self.problems.append(f"entity &{name};")

    def handle_data(self, data):
        if "<" in data or ">" in data:
            self.problems.append(f"a bare < or > in {data[:20]!r}")

    def handle_comment(self, data):
        self.problems.append("a comment")

    def unknown_decl(self, data):
        self.problems.append("a declaration")


def problems(piece: str) -> list[str]:
    """Why Telegram would refuse `piece` as HTML ([] if it would not)."""
    out = [f"bare & at {m.start()}: {piece[m.start():m.start() + 8]!r}" for m in re.finditer("&", piece)
           if not ENTITY.match(piece, m.start())]
    parser = TelegramHTML()
    parser.feed(piece)
    parser.close()
    out += parser.problems + [f"<{tag}> left open" for tag in parser.stack]
    if not piece.strip():
        out.append("an empty piece")
    return out


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def visible(text: str) -> str:
    """What the reader sees, whitespace aside: the text without tags, entities resolved."""
    return "".join(html.unescape(re.sub(r"<[^<>]*>", "", text)).split())


def check(text: str, limit: int, first_limit: int | None = None) -> list[str]:
    pieces = split_html(text, limit, first_limit=first_limit)
    for k, piece in enumerate(pieces):
        cap = first_limit if (k == 0 and first_limit) else limit
        assert problems(piece) == [], (k, piece)
        assert units(piece) <= cap, (k, units(piece), cap)
    assert "".join(visible(p) for p in pieces) == visible(text)
    return pieces


CASES = [  # (what, text, limit): each piece valid Telegram HTML, within its limit, nothing lost
    ("entities with no space to cut at", html.escape("x&" * 3000), MESSAGE_LIMIT),
    ("one bold run over several messages", "<b>" + html.escape("a&b<c>d " * 1500) + "</b>", MESSAGE_LIMIT),
    ("nested tags open across the cut", "<i>x <b>" + "word &amp; " * 900 + "</b> y</i>", MESSAGE_LIMIT),
    ("a link open across the cut", '<a href="https://x.test/?a=1&amp;b=2">' + "link " * 1000 + "</a>", 1000),
    ("code with a language class", '<pre><code class="language-python">' + "x = 1 &lt; 2\n" * 500
                                   + "</code></pre>", 1000),
    ("a spoiler", '<span class="tg-spoiler">' + "secret " * 400 + "</span>", 500),
    ("emoji count two UTF-16 units", "📈" * 3000, MESSAGE_LIMIT),
    ("numeric entities", "&#x27;&#39;" * 1000, 500),
    ("lines of alerts", "\n".join(f"🔴 <b>rule {k} &amp; co</b> · <i>r-{k}</i>" for k in range(400)),
     MESSAGE_LIMIT),
    ("one word longer than a message", "a" * 10000, MESSAGE_LIMIT),
]


@pytest.mark.parametrize("text,limit", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_piece_is_valid_telegram_html_within_the_limit(text, limit):
    assert len(check(text, limit)) > 1


def test_a_text_that_fits_is_one_piece_unchanged():
    text = "<b>a &amp; b</b>\n<i>c</i>"
    assert split_html(text, MESSAGE_LIMIT) == [text]


def test_it_cuts_at_a_line_break_when_there_is_one_in_the_second_half():
    text = "\n".join(f"<b>line {k}</b> &amp; more" for k in range(300))
    for piece in check(text, 1000):
        assert piece.endswith("more") and piece.startswith("<b>line ")


def test_a_caption_is_the_first_piece_of_at_most_1024():
    text = "<b>" + html.escape("a&b " * 1000) + "</b>"
    pieces = check(text, MESSAGE_LIMIT, first_limit=CAPTION_LIMIT)
    assert units(pieces[0]) <= CAPTION_LIMIT < units(pieces[1])


FRAGMENTS = ["&amp;", "&lt;", "&gt;", "&quot;", "&#x27;", "&#8364;", "a", "bc", " ", "\n", "é", "📈", "x" * 70]
TAGS = [("<b>", "</b>"), ("<i>", "</i>"), ("<u>", "</u>"), ("<s>", "</s>"), ("<code>", "</code>"),
        ('<a href="https://e.test/?q=1&amp;r=2">', "</a>"), ("<tg-spoiler>", "</tg-spoiler>"),
        ("<blockquote>", "</blockquote>"), ("<pre>", "</pre>")]


def random_html(rng: random.Random, budget: int, open_tags: tuple = ()) -> str:
    """Valid Telegram HTML of about `budget` characters: entities, emoji, long words, nested tags."""
    out = []
    while budget > 0:
        if len(open_tags) < 3 and rng.random() < 0.15:
            opening, closing = rng.choice([t for t in TAGS if t not in open_tags])
            inner = random_html(rng, rng.randint(1, max(1, budget // 2)), open_tags + ((opening, closing),))
            out.append(f"{opening}{inner}{closing}")
            budget -= len(inner) + 8
        else:
            fragment = rng.choice(FRAGMENTS)
            out.append(fragment)
            budget -= len(fragment)
    return "".join(out) or "a"


def test_many_random_texts_with_entities_and_tags_near_every_cut():
    rng = random.Random(20240716)
    for _ in range(400):
        limit = rng.randint(120, 400)
        text = random_html(rng, rng.randint(limit, limit * 6))
        check(text, limit, first_limit=rng.choice([None, limit // 2 + 30]))


# -- through the Bot API stand-in: what the chat adapter and the notifier actually send --------------------

def test_a_long_reply_and_caption_reach_telegram_as_valid_pieces(telegram):
    from bot.notify.telegram import make_bot
    from bot.telegram.reply import Reply, send_reply
    text = "R&D <up> " + "x&" * 5000

    async def go():
        async with make_bot() as bot:
            await send_reply(bot, 1001, Reply(text))
            await send_reply(bot, 1001, Reply(text, photo=b"\x89PNG fake"))
    asyncio.run(go())
    [photo] = telegram.sent("sendPhoto")
    assert problems(photo.fields["caption"]) == [] and units(photo.fields["caption"]) <= CAPTION_LIMIT
    messages = [m.fields["text"] for m in telegram.sent("sendMessage")]
    assert len(messages) >= 5
    for piece in messages:
        assert problems(piece) == [] and units(piece) <= MESSAGE_LIMIT
    in_order = [m.fields.get("text") or m.fields.get("caption") for m in telegram.messages()]
    assert visible("".join(in_order)) == visible(html.escape(text)) * 2


def test_a_long_alert_reaches_telegram_as_valid_pieces(telegram):
    from datetime import date
    from bot.notify.alert import Alert
    from bot.notify.telegram import Notifier
    alert = Alert("r", date(2024, 7, 11), "warning", "R&D <rule>", "x&" * 5000)
    results = []
    notifier = Notifier()
    notifier.pace = 0  # no pause between the pieces: nothing here is flood-limited
    notifier.send("1001", [alert], {}, lambda i, d: results.append(d))
    assert [d.ok for d in results] == [True]
    pieces = [m.fields["text"] for m in telegram.sent("sendMessage")]
    assert len(pieces) >= 3
    for piece in pieces:
        assert problems(piece) == [] and units(piece) <= MESSAGE_LIMIT
