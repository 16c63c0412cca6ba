"""The corpus: an AgentSpec and a seed -> train / val / held-out transcripts.

Deterministic: each split draws from its own random.Random seeded by a string made from the seed
(string seeds go through sha512, so they are the same on every machine and Python; never the global
RNG or hash()), and the spec is walked in file order. The same seed gives a byte-identical corpus.

Held-out split: each intent's phrasings are partitioned before anything is generated. Held-out
examples use only held-out phrasings; train and val only the rest (val with fresh values), so the
held-out score measures phrasings the model never saw.
"""
from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter
from dataclasses import dataclass, field

from ..errors import bad_input
from . import phrasebook as pb
from .numbers import digits_for_numbers
from .spec import UNITS, AgentSpec, Arg, Intent, Ref, format_value, template_parts, unit_range

# The model's context is 128 tokens of a ~512-token BPE vocabulary; these keep a turn well inside it.
MAX_REQUEST_BYTES = 120
MAX_TRANSCRIPT_BYTES = 250
MAX_TRIES = 200  # renderings of one choice of intents before its phrasings are declared too long
AVOID_TRIES = 20
MAX_HISTORY = 4  # unrelated earlier turns before an example of a conversation
MAX_DIALOGUE_BYTES = 480  # a whole conversation (about 210 tokens): inside a 256-token context and its reply reserve  # renderings spent looking for a val/held-out request that train does not have

# Each decoration is an independent draw per request. Modest rates: most requests stay close to a
# phrasing, so the model learns the phrasing and tolerates the noise rather than the other way round.
P_OPENER = 0.15  # "hey, ..." "um ..."
P_CONTEXT = 0.08  # a sentence before the request: "I just got home. ..."
P_CLOSER = 0.15  # "... please" "..., thanks"
P_DROP_END = 0.3  # drop the phrasing's final . ? !
P_ADD_END = 0.2  # add . or ! where the phrasing has none
P_SECOND_TYPO = 0.25  # of requests with a typo, share with two
SAY_MAX = 120  # the largest number a request says in a unit bigger than its arg's ("120 minutes")
P_AFTER_ACTION = 0.6  # of no-call turns after earlier ones, share right after a turn that called a tool
P_SAME_TOOL = 0.25  # of two-call examples whose first tool takes a number, share that call it twice
FAR_PAST = 999  # values past a range go up to this (or ten times the top), so that "pin 99" is seen
P_CANONICAL_UNIT = 0.7  # "minutes" rather than "min"/"mins"
P_SMALL_NUMBER = 0.7  # numbers in requests: mostly everyday sizes (1..60), else any in range
SMALL_SPAN = 60
CASINGS = (("as_is", 0.45), ("capital", 0.38), ("lower", 0.12), ("upper", 0.05))

_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


@dataclass(frozen=True)
class Example:
    request: str
    calls: tuple[tuple[str, str], ...]  # (call text without brackets, result text)
    answer: str
    intent: str  # "led_on", or "led_on+temp" for a two-call example
    templates: tuple[str, ...] = ()  # the phrasing(s) the request was made from
    typos: int = 0
    before: tuple["Example", ...] = ()  # the conversation's earlier turns, oldest first (each with no `before`)


@dataclass
class Corpus:
    train: list[Example]
    val: list[Example]
    heldout: list[Example]


def render(ex: Example) -> str:
    """The transcript, byte for byte what the model trains on (see docs/architecture.md): the earlier
    turns of the conversation, then this one."""
    return "".join(render_turn(b) for b in ex.before) + render_turn(ex)


def as_read(ex: Example) -> str:
    """render(ex) as the model reads it: every request with its numbers in digits (agent/numbers.py),
    as the device rewrites a request before tokenising it."""
    return "".join(read_turn(b) for b in ex.before) + read_turn(ex)


def read_turn(ex: Example) -> str:
    return render_turn(dataclasses.replace(ex, request=digits_for_numbers(ex.request)))


def render_turn(ex: Example) -> str:
    """One turn's transcript: the request, each [call]result, the answer."""
    return ex.request + "\n" + "".join(f"[{c}]{r}\n" for c, r in ex.calls) + ex.answer + "\n"


def prompt(ex: Example) -> str:
    return ex.request + "\n"


def phrasing_words(phrasing: str) -> set[str]:
    """The words a phrasing writes itself (not its {slots}), lowercased."""
    return set(re.findall(r"[a-z]+", re.sub(r"\{[^}]*\}", " ", phrasing).lower()))


def plain_nouns(tool) -> list[str]:
    """The tool's nouns that name none of its args ("the {light}", not "the {device} on {pin}"), or
    "the NAME": what a question, a negation or a correction can say with no value to give."""
    arg_names = {a.name for a in tool.args}
    return [n for n in tool.noun_templates()
            if not any(isinstance(p, Ref) and p.name in arg_names for p in template_parts(n))] \
        or [f"the {tool.name}"]


def range_args(tool, intent: Intent) -> list[Arg]:
    """The plain int args of a tool that acts, left free by `intent`: a request can say a value past
    their range ("pin 40"), which the call must copy for the device to refuse."""
    if not tool.acts:
        return []
    return [a for a in tool.args if a.kind == "int" and not a.unit and a.name not in intent.fixed_args]


def range_answer(arg: Arg) -> str:
    """What the device says when it refuses a value past the arg's range (conversation.range_text)."""
    unit = " seconds" if arg.kind == "duration" else ""
    return f"Not done: {arg.name} must be {arg.min} to {arg.max}{unit}."


def duration_range_args(tool, intent: Intent) -> list[Arg]:
    """The duration args of a tool that acts, left free by `intent`: "water for 20 minutes" past a
    10-minute top, which the call must copy as 20m for the device to refuse."""
    if not tool.acts:
        return []
    return [a for a in tool.args if a.kind == "duration" and a.name not in intent.fixed_args]


def derived_intents(spec: AgentSpec) -> tuple[Intent, ...]:
    """Intents the generator adds to every spec (phrasebook.py): questions about each tool (answered
    with its description), a pool of off-topic requests, and indirect needs for every intent with a
    polarity. They are split into train and held-out phrasings like the spec's own."""
    out: list[Intent] = []
    for tool in spec.tools:
        arg_names = {a.name for a in tool.args}
        nouns = plain_nouns(tool)
        desc = tool.description or f"The {tool.name} tool."
        phr = tuple(dict.fromkeys(q.format(noun=n) for q in pb.META_QUESTIONS for n in nouns))
        out.append(Intent(name=f"meta_{tool.name}", tool="", phrasings=phr,
                          answers=tuple(a.format(description=desc) for a in pb.META_ANSWERS)))
        for intent in tool.intents:
            if not intent.polarity:
                continue
            free = arg_names - set(intent.fixed_args)
            usable = [n for n in tool.noun_templates()
                      if free <= {p.name for p in template_parts(n) if isinstance(p, Ref)}]
            frames = pb.POLARITY_ON if intent.polarity == "on" else pb.POLARITY_OFF
            phr = tuple(dict.fromkeys(f.format(noun=n) for f in frames for n in usable))
            if phr:
                out.append(Intent(name=f"{intent.name}_indirect", tool=tool.name, phrasings=phr,
                                  answers=intent.answers, args=intent.args, result=intent.result,
                                  weight=intent.weight * 0.4, polarity=intent.polarity))
    offtopic = tuple(dict.fromkeys(re.sub(r"\{([a-z]+)\}", r"{offtopic_\1}", p) for p in pb.OFFTOPIC))
    out.append(Intent(name="offtopic", tool="", phrasings=offtopic, answers=pb.OFFTOPIC_ANSWERS))
    return tuple(out)


def all_intents(spec: AgentSpec) -> tuple[Intent, ...]:
    """The spec's intents, then the derived ones. A derived phrasing can equal one of the spec's
    ("kill the {light}" is both led_off and led_off_indirect); such pairs always mean the same call,
    and test_corpus checks that. (Dropping them here would change the shipped model's corpus.)"""
    return spec.intents + derived_intents(spec)


def split_phrasings(spec: AgentSpec, seed: int = 0) -> tuple[dict[str, tuple[str, ...]],
                                                             dict[str, tuple[str, ...]]]:
    """(train phrasings, held-out phrasings) per intent name. An intent with 3+ phrasings keeps
    `heldout_fraction` of them apart (at least one); fewer than 3 and all of them train.

    A held-out phrasing is a new sentence made of words the intent's training phrasings use: one whose
    key word appears nowhere else ("clear pin 5" as the only phrasing with "clear") could not be
    learned from anything, so it is not eligible while an eligible one is left. The held-out score
    then measures generalisation to new wordings, not guessing of unseen vocabulary."""
    rng = random.Random(f"tinyagent/split/{seed}")
    frac = spec.style.heldout_fraction
    train: dict[str, tuple[str, ...]] = {}
    heldout: dict[str, tuple[str, ...]] = {}
    for intent in all_intents(spec):
        n = len(intent.phrasings)
        n_held = max(1, round(n * frac)) if n >= 3 and frac > 0 else 0
        words = [phrasing_words(p) for p in intent.phrasings]
        held: list[int] = []

        def covered(hold: list[int]) -> bool:
            seen = set().union(*(words[i] for i in range(n) if i not in hold))
            return all(words[i] <= seen for i in hold)

        for i in rng.sample(range(n), n):
            if len(held) < n_held and covered(held + [i]):
                held.append(i)
        if n_held and not held:  # nothing is fully covered: hold out the least novel phrasing
            held = [min(rng.sample(range(n), n), key=lambda i: len(words[i] - set().union(
                *(words[j] for j in range(n) if j != i))))]
        train[intent.name] = tuple(p for i, p in enumerate(intent.phrasings) if i not in held)
        heldout[intent.name] = tuple(p for i, p in enumerate(intent.phrasings) if i in held)
    return train, heldout


def generate_corpus(spec: AgentSpec, seed: int = 0, n_train: int = 20000, n_val: int = 1000,
                    n_heldout: int = 1000) -> Corpus:
    train_phrasings, heldout_phrasings = split_phrasings(spec, seed)
    train = _Generator(spec, train_phrasings, f"tinyagent/train/{seed}").generate(n_train)
    seen = frozenset(ex.request for ex in train)
    val = _Generator(spec, train_phrasings, f"tinyagent/val/{seed}").generate(n_val, seen)
    heldout = _Generator(spec, heldout_phrasings, f"tinyagent/heldout/{seed}").generate(n_heldout, seen)
    return Corpus(train, val, heldout)


def corpus_stats(corpus: Corpus) -> dict:
    splits = {"train": corpus.train, "val": corpus.val, "heldout": corpus.heldout}
    everything = [ex for exs in splits.values() for ex in exs]
    phrasings = {k: {t for ex in exs for t in ex.templates} for k, exs in splits.items()}
    train_requests = {ex.request for ex in corpus.train}
    words = {w for ex in everything for w in re.findall(r"[a-z']+", render(ex).lower())}
    per_intent = Counter(part for ex in corpus.train for part in ex.intent.split("+"))
    request_bytes = [len(ex.request.encode()) for ex in everything]
    transcript_bytes = [len(render(ex).encode()) for ex in everything]

    def frac(pred) -> float:
        return round(sum(map(pred, everything)) / max(1, len(everything)), 4)

    def summary(xs: list[int]) -> dict:
        return {"mean": round(sum(xs) / max(1, len(xs)), 1), "max": max(xs, default=0)}

    return {
        "examples": {k: len(exs) for k, exs in splits.items()},
        "phrasings": {k: len(v) for k, v in phrasings.items()},
        "phrasings_shared_train_heldout": len(phrasings["train"] & phrasings["heldout"]),
        "distinct_requests": {k: len({ex.request for ex in exs}) for k, exs in splits.items()},
        "distinct_answers": len({ex.answer for ex in everything}),
        "heldout_requests_seen_in_train": sum(ex.request in train_requests for ex in corpus.heldout),
        "per_intent_train": dict(sorted(per_intent.items())),
        "chat_fraction": frac(lambda ex: not ex.calls),
        "two_call_fraction": frac(lambda ex: len(ex.calls) == 2),
        "typo_fraction": frac(lambda ex: ex.typos > 0),
        "request_bytes": summary(request_bytes),
        "transcript_bytes": summary(transcript_bytes),
        "vocabulary_words": len(words),
    }


# ---- generation -----------------------------------------------------------------------------------

# A request is built as pieces (text, protected). Protected pieces carry slot values (numbers, enum
# words) that the call copies, so typos never touch them.
_Piece = tuple[str, bool]


@dataclass
class _Turn:
    pieces: list[_Piece]
    call: tuple[str, str] | None
    answer: str
    template: str
    intent: str = ""
    values: dict = field(default_factory=dict)  # arg values
    texts: dict = field(default_factory=dict)  # how the request said each arg
    before: dict = field(default_factory=dict)  # the word before each arg's slot ("pin" in "pin 5")


class _Generator:
    def __init__(self, spec: AgentSpec, phrasings: dict[str, tuple[str, ...]], seed: str):
        self.spec = spec
        self.style = spec.style
        self.rng = random.Random(seed)
        self.phrasings = phrasings
        usable = [i for i in all_intents(spec) if phrasings.get(i.name)]
        self.tool_intents = [i for i in usable if i.tool]
        self.chat_intents = [i for i in usable if not i.tool and not i.name.startswith("meta_")
                             and i.name != "offtopic"]
        self.meta_intents = [i for i in usable if not i.tool and i.name.startswith("meta_")]
        self.offtopic = [i for i in usable if i.name == "offtopic"]
        self.action_intents = [i for i in self.tool_intents if spec.tool(i.tool).acts]
        self.conditions = [(i, s) for i in self.tool_intents if not spec.tool(i.tool).acts
                           for s in _condition_slots(spec.tool(i.tool))] if self.action_intents else []
        self.range_intents = [i for i in self.tool_intents if range_args(spec.tool(i.tool), i)]
        self.duration_range_intents = [i for i in self.tool_intents if duration_range_args(spec.tool(i.tool), i)] \
            if self.style.duration_range_rate else []
        self.synonyms = dict(spec.synonyms)
        self.synonyms.update({f"offtopic_{k}": v for k, v in pb.OFFTOPIC_SLOTS.items()})

    def generate(self, n: int, avoid: frozenset[str] = frozenset()) -> list[Example]:
        if n > 0 and not self.tool_intents and not self.chat_intents:
            raise bad_input(f"{self.spec.source}: no intent has phrasings for this split (allowed: "
                            f"give intents 3+ phrasings, or set heldout_fraction > 0)")
        out = []
        for _ in range(n):
            ex = self.example_of(self.pick_kind(), avoid)
            if self.style.history_rate and self.rng.random() < self.style.history_rate:
                ex = self.with_history(ex, avoid)
            out.append(ex)
        return out

    def pick_kind(self) -> str:
        """"plain" (the spec's intents, one or two calls), or one of the derived kinds."""
        st, r = self.style, self.rng.random()
        for kind, share, ok in (("terse", st.terse_fraction, self.tool_intents),
                                ("negation", st.negation_fraction, self.action_intents),
                                ("correction", st.correction_fraction, self.action_intents),
                                ("meta", st.meta_fraction, self.meta_intents),
                                ("offtopic", st.offtopic_fraction, self.offtopic),
                                ("followup", st.followup_fraction, self.tool_intents),
                                ("conditional", st.conditional_fraction, self.conditions),
                                ("noise", st.noise_fraction, True),
                                ("out_of_range", st.out_of_range_fraction,
                                 self.range_intents or self.duration_range_intents)):
            if r < share and ok:
                return kind
            r -= share
        return "plain"

    def example_of(self, kind: str, avoid: frozenset[str]) -> Example:
        if kind == "plain":
            return self.example(self.pick(), avoid)
        if kind == "meta":
            return self.example([self.rng.choice(self.meta_intents)], avoid)
        if kind == "offtopic":
            return self.example(self.offtopic, avoid)
        if kind == "noise":
            return self.noise(avoid)
        make = {"terse": self.terse, "negation": self.negation, "correction": self.correction, "followup": self.followup,
                "conditional": self.conditional, "out_of_range": self.out_of_range}[kind]
        for _ in range(MAX_TRIES):
            ex = make()
            if ex is not None and len(ex.request.encode()) <= MAX_REQUEST_BYTES and \
                    len(render_turn(ex).encode()) <= MAX_TRANSCRIPT_BYTES and ex.request not in avoid:
                return ex
        return self.example(self.pick(), avoid)

    def pick(self) -> list[Intent]:
        r = self.rng.random()
        st = self.style
        if self.chat_intents and (r < st.chat_fraction or not self.tool_intents):
            return [self.weighted(self.chat_intents)]
        if r < st.chat_fraction + st.two_call_fraction and len({i.tool for i in self.tool_intents}) > 1:
            first = self.weighted(self.tool_intents)
            same = [i for i in self.tool_intents if i.tool == first.tool and
                    any(a.kind == "int" and a.name not in i.fixed_args for a in self.spec.tool(i.tool).args)]
            if first in same and self.rng.random() < P_SAME_TOOL:  # "pin 4 high and pin 5 low"
                return [first, self.weighted(same)]
            return [first, self.weighted([i for i in self.tool_intents if i.tool != first.tool])]
        return [self.weighted(self.tool_intents)]

    def weighted(self, intents: list[Intent]) -> Intent:
        return self.rng.choices(intents, weights=[i.weight for i in intents])[0]

    def example(self, intents: list[Intent], avoid: frozenset[str]) -> Example:
        fresh_tries = 0
        for _ in range(MAX_TRIES):
            turns = [self.turn(i) for i in intents]
            request, typos = self.request([t.pieces for t in turns])
            ex = Example(request=request,
                         calls=tuple(t.call for t in turns if t.call is not None),
                         answer=" ".join(t.answer for t in turns),
                         intent="+".join(i.name for i in intents),
                         templates=tuple(t.template for t in turns), typos=typos)
            if len(request.encode()) > MAX_REQUEST_BYTES or len(render(ex).encode()) > MAX_TRANSCRIPT_BYTES:
                continue
            fresh_tries += 1
            if request not in avoid or fresh_tries >= AVOID_TRIES:
                return ex
        raise bad_input(f"{self.spec.source}: intent '{'+'.join(i.name for i in intents)}' never fits "
                        f"(allowed: requests <= {MAX_REQUEST_BYTES} bytes, transcripts <= "
                        f"{MAX_TRANSCRIPT_BYTES} bytes; shorten its phrasings or answers)")

    # -- the call's own words typed as a request: "led on", "gpio 5 1", "timer 90s", "uptime", "temp?" --

    def terse(self) -> Example | None:
        """A request that is the tool's name and its values in the call's order, as people type at a
        console: the call it names. (With brackets it is the call syntax, which `noise` teaches is no
        call: a request is words.)"""
        rng = self.rng
        intent = self.weighted(self.tool_intents)
        tool = self.spec.tool(intent.tool)
        values = dict(intent.fixed_args)
        words: list[str] = []
        for tok in tool.call.split(" "):
            text = ""
            for p in template_parts(tok):
                if isinstance(p, Ref):
                    if p.name in values:
                        text += str(values[p.name])
                    else:
                        arg = tool.arg(p.name)
                        values[p.name], said = self.request_value(arg, "", None)
                        text += said
                else:
                    text += p
            words.append(text)
        if not tool.args and rng.random() < 0.3:  # "temperature", "status": a plain noun of the tool
            words[0] = re.sub(r"^the ", "", "".join(t for t, _ in self.literal_pieces(rng.choice(plain_nouns(tool)))))
        request = " ".join(words) + (rng.choice(("?", "?", " ?", " please", " pls")) if not tool.acts and
                                     rng.random() < 0.4 else "")
        if rng.random() < 0.15:
            request, _ = self.decorate([(request, True)])
        call, result, answer = self.outcome(tool, intent, values)
        return Example(request, ((call, result),), answer, f"terse:{intent.name}", (), 0)

    # -- negations and corrections (phrasebook.py) --

    def imperative_turn(self, intents: list[Intent]) -> _Turn | None:
        """A turn whose phrasing starts with a verb ("turn on the {light}"), for "don't ...". """
        for _ in range(20):
            t = self.turn(self.weighted(intents))
            first = t.template.split(" ")[0].lower().strip(",")
            if first in pb.IMPERATIVES:
                return t
        return None

    def negation(self) -> Example | None:
        rng = self.rng
        r = rng.random()
        if r < 0.2:  # leave the thing alone
            tool = self.spec.tool(rng.choice(self.action_intents).tool)
            noun = rng.choice(plain_nouns(tool))
            template = rng.choice(pb.LEAVE_ALONE).format(noun=noun)
            pieces = [self.literal_or_synonym(p) for p in template_parts(template)]
            intent = f"leave_{tool.name}"
            bases: tuple[str, ...] = ()  # a generic frame and the tool's noun: no phrasing of the split
        else:
            pool = self.action_intents if r < 0.5 or r >= 0.65 else self.tool_intents  # "don't bother checking"
            t = self.imperative_turn(pool) if r < 0.65 else self.turn(self.weighted(pool))
            if t is None:
                return None
            frame = rng.choice(pb.NEGATIONS if r < 0.65 else pb.RETRACTIONS)
            if r < 0.65:
                t.pieces = _lower_first(t.pieces)
            pieces = _frame(frame, "request", t.pieces)
            intent = "negation" if r < 0.65 else "retraction"
            bases = (t.template,)
        return self.finish(pieces, (), rng.choice(pb.DECLINED_ANSWERS), intent, bases)

    def correction(self) -> Example | None:
        """The request is changed before it is done: only the final call is made."""
        rng = self.rng
        r = rng.random()
        if r < 0.45:  # another intent of the same tool: "turn it on, no wait, off"
            first_i = self.weighted(self.action_intents)
            siblings = [i for i in self.action_intents if i.tool == first_i.tool and i.name != first_i.name
                        and i.args != first_i.args]
            if not siblings:
                return None
            second = self.turn(self.weighted(siblings))
            frame = rng.choice(pb.CORRECTIONS)
            if "{first_bare}" in frame:
                first = self.imperative_turn([first_i])
                if first is None:
                    return None
                first.pieces = _lower_first(first.pieces)
                pieces = _frame(frame.replace("{second}", "{x}"), "first_bare", first.pieces)
            else:
                first = self.turn(first_i)
                pieces = _frame(frame.replace("{second}", "{x}"), "first", first.pieces)
            pieces = _replace_slot(pieces, "{x}", _lower_first(second.pieces))
            return self.finish(pieces, (second.call,), second.answer, f"correction:{second.intent}",
                               (first.template, second.template))
        if r < 0.85:  # the same request, a new value: "set pin 3 high, no, 4"
            cands = [i for i in self.action_intents
                     if any(isinstance(p, Ref) and p.name in {a.name for a in self.spec.tool(i.tool).args
                                                            if a.kind != "enum"} - set(i.fixed_args)
                            for p in _all_parts(self.phrasings[i.name]))]
            if not cands:
                return None
            intent = self.weighted(cands)
            tool = self.spec.tool(intent.tool)
            first = self.turn(intent)
            numeric = [a for a in tool.args if a.kind != "enum" and a.name not in intent.fixed_args
                       and any(isinstance(p, Ref) and p.name == a.name for p in template_parts(first.template))]
            if not numeric:
                return None
            arg = rng.choice(numeric)
            unit = next(p.unit for p in template_parts(first.template) if isinstance(p, Ref) and p.name == arg.name)
            old_value, old_text = first.values[arg.name], first.texts[arg.name]
            for _ in range(10):
                value, text = self.request_value(arg, unit, None)
                if value != old_value:
                    break
            else:
                return None
            if arg.kind == "int" and rng.random() < 0.4:
                before = first.before.get(arg.name, "")
                if before:
                    text = f"{before} {text}"
            frame = rng.choice(pb.VALUE_CORRECTIONS)
            pieces = _frame(frame.replace("{value}", "{x}").replace("{old}", "{y}"), "request", first.pieces)
            pieces = _replace_slot(pieces, "{x}", [(text, True)])
            pieces = _replace_slot(pieces, "{y}", [(old_text, True)])
            second = self.turn(intent, dict(first.values, **{arg.name: value}), template=first.template)
            return self.finish(pieces, (second.call,), second.answer, f"correction:{intent.name}",
                               (first.template,))
        if r < 0.93:  # another tool was meant: "never mind the light, what's the status?"
            first_tool = self.spec.tool(self.weighted(self.action_intents).tool)
            second = self.turn(self.weighted([i for i in self.tool_intents if i.tool != first_tool.name]
                                             or self.tool_intents))
            frame = rng.choice(pb.CROSS_CORRECTIONS)
            noun = rng.choice(plain_nouns(first_tool))
            head, _, tail = frame.replace("{noun}", noun).partition("{second}")
            pieces = [self.literal_or_synonym(p) for p in template_parts(head)] + _lower_first(second.pieces) + \
                [self.literal_or_synonym(p) for p in template_parts(tail)]
            return self.finish(pieces, (second.call,), second.answer, f"correction:{second.intent}",
                               (second.template,))
        second = self.turn(self.weighted(self.action_intents))  # "scratch that, turn it off"
        opener = rng.choice(pb.CORRECTION_OPENERS)
        pieces = [(opener + " ", False)] + _lower_first(second.pieces)
        return self.finish(pieces, (second.call,), second.answer, f"correction:{second.intent}",
                           (second.template,))

    def finish(self, pieces: list[_Piece], calls: tuple, answer: str, intent: str,
               templates: tuple[str, ...]) -> Example:
        request, typos = self.decorate(pieces)
        return Example(request=request, calls=tuple(c for c in calls if c is not None), answer=answer,
                       intent=intent, templates=templates, typos=typos)

    # -- values past a tool's range: copied into the call, which the device then refuses --

    def out_of_range(self) -> Example | None:
        """"set pin 40 high" (or "pin -1") when pins are 0..39: the call says 40 as asked (never another
        pin), and the device's grammar refuses it before anything runs; the answer is the device's refusal."""
        if self.duration_range_intents and (not self.range_intents or
                                            self.rng.random() < self.style.duration_range_rate):
            return self.duration_out_of_range()
        intent = self.weighted(self.range_intents)
        tool = self.spec.tool(intent.tool)
        arg = self.rng.choice(range_args(tool, intent))
        span = max(10, (arg.max - arg.min) // 2)
        r = self.rng.random()
        if r < 0.2:  # below the bottom: "pin -1"
            bad = arg.min - self.rng.randint(1, 10)
        elif r < 0.6:  # just past the top ("pin 40")
            bad = arg.max + self.rng.randint(1, 10)
        elif r < 0.75:  # up to half the range past it
            bad = arg.max + self.rng.randint(1, span)
        else:  # far past it, one or two digits longer ("pin 99", "pin 450"): its first digits are in range
            bad = self.rng.randint(arg.max + 1, max(FAR_PAST, 10 * arg.max + 9))
        template = self.rng.choice([p for p in self.phrasings[intent.name]
                                    if any(isinstance(ref, Ref) and ref.name == arg.name and not ref.unit
                                           for ref in template_parts(p))] or [None])
        if template is None:
            return None
        t = self.turn(intent, {arg.name: bad}, template)
        return self.finish(t.pieces, ((t.call[0], ""),), range_answer(arg), f"range_{intent.name}",
                           (t.template,))

    def duration_out_of_range(self) -> Example | None:
        """"water for 20 minutes" when the pump's top is 10: a duration in one unit past the arg's max
        (or 0 below a min of 1), copied into the call as said (20m), refused by the device's grammar."""
        rng = self.rng
        intent = self.weighted(self.duration_range_intents)
        tool = self.spec.tool(intent.tool)
        arg = rng.choice(duration_range_args(tool, intent))
        if rng.random() < 0.1 and arg.min >= 1:
            parts = [(0, rng.choice("ms"))]
        else:
            units = [(u, f) for u, f in pb.DURATION_UNITS if 10 * arg.max // f > arg.max // f]
            u, f = rng.choice(units)
            lo = arg.max // f + 1
            parts = [(rng.randint(lo, min(10 * arg.max // f, max(2 * lo, 999))), u)]
        template = rng.choice([p for p in self.phrasings[intent.name]
                               if any(isinstance(ref, Ref) and ref.name == arg.name and ref.unit != "adj"
                                      for ref in template_parts(p))] or [None])
        if template is None:
            return None
        t = self.turn(intent, {arg.name: pb.duration_call(parts)}, template)
        return self.finish(t.pieces, ((t.call[0], ""),), range_answer(arg), f"range_{intent.name}",
                           (t.template,))

    # -- conversations: turns that lean on earlier ones, and calls that depend on a result --

    def with_history(self, ex: Example, avoid: frozenset[str]) -> Example:
        """`ex` after 1..MAX_HISTORY unrelated earlier turns (the past must not leak into it), kept
        inside MAX_DIALOGUE_BYTES by dropping the oldest."""
        history = []
        for _ in range(self.rng.randint(1, MAX_HISTORY)):
            kind = self.pick_kind()
            # a refused turn where nothing ran is taken back on the device: it never stays in a conversation
            history.append(self.example_of("plain" if kind in ("followup", "out_of_range") else kind, avoid))
        if not ex.calls and not ex.before and self.tool_intents and self.rng.random() < P_AFTER_ACTION:
            # "thanks", "cool", "what's the capital of Peru?" right after a call: still no call (not "again")
            history[-1] = self.example([self.weighted(self.tool_intents)], avoid)
        turns = history + list(ex.before)
        while turns and sum(len(render_turn(t).encode()) for t in turns) + len(render_turn(ex).encode()) \
                > MAX_DIALOGUE_BYTES:
            turns.pop(0)
        return Example(ex.request, ex.calls, ex.answer, ex.intent, ex.templates, ex.typos, tuple(turns))

    def base_turn(self, intents: list[Intent]) -> tuple[_Turn, Example]:
        t = self.turn(self.weighted(intents))
        request, typos = self.request([t.pieces])
        return t, Example(request, (t.call,), t.answer, t.intent, (t.template,), typos)

    def followup(self) -> Example | None:
        """A turn that only makes sense after the one before it: the same call again, with a new
        value, scaled, undone, or a question about its result answered from the context."""
        rng = self.rng
        t, base = self.base_turn(self.tool_intents)
        intent = next(i for i in self.tool_intents if i.name == t.intent)
        tool = self.spec.tool(intent.tool)
        kinds = ["again"]
        changeable = self.changeable_args(tool, intent, t)
        if changeable:
            kinds += ["value", "value"]
        if any(a.kind == "duration" and len(_parse_duration(str(t.values[a.name]))) == 1 for a in changeable):
            kinds += ["scale"]
        if tool.acts:
            kinds += ["undo", "undo"]
        numeric = [s for s in _condition_slots(tool) if s.kind != "enum"]
        if not tool.acts and numeric:
            kinds += ["repeat", "compare", "compare", "change"]
        kind = rng.choice(kinds)
        before: tuple[Example, ...] = (base,)
        if kind == "again" or kind == "change":
            call, result, answer = self.outcome(tool, intent, dict(t.values))
            pieces = self.literal_pieces(rng.choice(pb.AGAIN))
            calls = ((call, result),)
            if kind == "change":  # the second read is a turn of its own; then the question
                slot = numeric[0]
                old, new = t.values[slot.name], self.parse_result_value(tool, slot, result)
                again_req, typos = self.decorate(pieces)
                before = (base, Example(again_req, calls, answer, f"again:{intent.name}", (), typos))
                rel, questions = rng.choice(pb.CHANGE_QUESTIONS)
                holds = old > new if rel == ">" else old < new
                text = rng.choice(pb.CHANGE_ANSWERS[holds]).format(
                    old=self.answer_text(slot, old, slot.unit), new=self.answer_text(slot, new, slot.unit))
                return self.finish_followup(self.literal_pieces(rng.choice(questions)), (), text,
                                            f"followup_change:{intent.name}", before)
            return self.finish_followup(pieces, calls, answer, f"followup_again:{intent.name}", before)
        if kind in ("value", "scale"):
            arg = rng.choice([a for a in changeable if kind == "value" or a.kind == "duration"
                              and len(_parse_duration(str(t.values[a.name]))) == 1])
            if kind == "scale" and arg.kind == "duration":
                got = self.scaled_duration(arg, str(t.values[arg.name]))
                if got is None:
                    return None
                value, pieces = got
            else:
                unit = next(p.unit for p in template_parts(t.template) if isinstance(p, Ref) and p.name == arg.name)
                for _ in range(10):
                    value, text = self.request_value(arg, unit, None)
                    if value != t.values[arg.name]:
                        break
                else:
                    return None
                word = t.before.get(arg.name, "")
                if arg.kind == "int" and word and rng.random() < 0.8:
                    text = f"{word} {text}"
                pieces = _fill(rng.choice(pb.VALUE_FOLLOWUPS), {"value": [(text, True)]})
            values = {a.name: t.values[a.name] for a in tool.args}
            values[arg.name] = value
            call, result, answer = self.outcome(tool, intent, values)
            return self.finish_followup(pieces, ((call, result),), answer, f"followup_value:{intent.name}", before)
        if kind == "undo":
            got = self.undo(tool, intent, t)
            if got is None:
                pieces = self.literal_pieces(rng.choice(pb.UNDO))
                return self.finish_followup(pieces, (), rng.choice(pb.CANNOT_UNDO_ANSWERS),
                                            f"followup_undo:{intent.name}", before)
            pieces, call, result, answer = got
            return self.finish_followup(pieces, ((call, result),), answer, f"followup_undo:{intent.name}", before)
        slot = numeric[0]
        value = t.values[slot.name]
        shown = self.answer_text(slot, value, slot.unit)
        if kind == "repeat":
            return self.finish_followup(self.literal_pieces(rng.choice(pb.REPEAT_QUESTIONS)), (),
                                        rng.choice(pb.REPEAT_ANSWERS).format(value=shown),
                                        f"followup_repeat:{intent.name}", before)
        rel, words = rng.choice(pb.RELATIONS)
        word = rng.choice(words)
        n, n_text = self.threshold(slot, int(value))
        holds = int(value) > n if rel == ">" else int(value) < n
        pieces = _fill(rng.choice(pb.COMPARE_QUESTIONS), {"rel": [(word, False)], "n": [(n_text, True)]})
        text = rng.choice(pb.YES_ANSWERS if holds else pb.NO_ANSWERS).format(
            value=shown, rel=word, n=format_value(slot, n))
        return self.finish_followup(pieces, (), text, f"followup_compare:{intent.name}", before)

    def noise(self, avoid: frozenset[str]) -> Example:
        """Line noise (phrasebook NOISE_WORDS): no call, whatever it contains."""
        rng = self.rng
        tool_words = sorted({w for t in self.spec.tools for w in [t.name] + [a.name for a in t.args]
                             + [v for a in t.args for v in a.values]})
        for _ in range(AVOID_TRIES):
            if self.style.structured_noise_rate and rng.random() < self.style.structured_noise_rate:
                text = self.structured_noise()
                text = " ".join(text.split())[:MAX_REQUEST_BYTES]
                if text not in avoid:
                    break
                continue
            r = rng.random()
            if r < 0.25:  # a cat on the keyboard
                text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz     ") for _ in range(rng.randint(2, 40)))
            elif r < 0.45:  # letters, digits and marks (a wrong baud rate, a paste)
                text = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789  .,?!-:;") for _ in range(rng.randint(2, 30)))
            elif r < 0.75:  # word salad, sometimes with a tool's words or a number in it
                words = [rng.choice(pb.NOISE_WORDS) for _ in range(rng.randint(1, 10))]
                for _ in range(rng.randint(0, 2)):
                    words.insert(rng.randrange(len(words) + 1),
                                 rng.choice(tool_words) if rng.random() < 0.6 else str(rng.randint(0, 999)))
                text = " ".join(words)
            else:  # the call syntax typed in, or pieces of it: a request is words, not calls
                t = rng.choice(self.spec.tools)
                call = t.name + "".join(" " + (rng.choice(a.values) if a.values else str(rng.randint(0, 99)))
                                        for a in t.args)
                frag = rng.choice((f"[{call}]", f"[{call}", f"{call}]", "[" * rng.randint(1, 6), "]" * rng.randint(1, 6),
                                   f"[{t.name}", " ".join([t.name] * rng.randint(2, 5))))
                words = [rng.choice(pb.NOISE_WORDS) for _ in range(rng.randint(0, 5))]
                words.insert(rng.randrange(len(words) + 1), frag)
                text = " ".join(words)
            text = " ".join(text.split())[:MAX_REQUEST_BYTES] or "zq"
            if text not in avoid:
                break
        return Example(text, (), rng.choice(pb.NOISE_ANSWERS), "noise", (), 0)

    def structured_noise(self) -> str:
        """A call written as data, as a paste or an injection would: JSON, a function call, key=value,
        sometimes after a few words. It is text, not a request: no call."""
        rng = self.rng
        t = rng.choice(self.spec.tools)
        vals = [(a.name, rng.choice(a.values) if a.values else str(rng.randint(-5, 999))) for a in t.args]
        vals = rng.sample(vals, rng.randint(0, len(vals))) if vals and rng.random() < 0.4 else vals
        key = rng.choice(("tool", "name", "action", "cmd", "function"))
        form = rng.randrange(5)
        if form == 0:
            body = ", ".join([f'"{key}": "{t.name}"'] + [f'"{k}": {v if v.lstrip("-").isdigit() else chr(34) + v + chr(34)}'
                                                          for k, v in vals])
            text = "{" + body + "}"
        elif form == 1:
            text = f"{t.name}(" + ", ".join(v if rng.random() < 0.5 else f"{k}={v}" for k, v in vals) + ")"
        elif form == 2:
            text = " ".join([f"{key}={t.name}"] + [f"{k}={v}" for k, v in vals])
        elif form == 3:
            text = f"<{key}>{t.name}" + "".join(f" {v}" for _, v in vals) + f"</{key}>"
        else:
            text = f"{key}: {t.name}" + "".join(f", {k}: {v}" for k, v in vals)
        if rng.random() < 0.5:
            words = [rng.choice(pb.NOISE_WORDS) for _ in range(rng.randint(1, 5))]
            text = " ".join(words) + " " + text
        return text

    def finish_followup(self, pieces: list[_Piece], calls: tuple, answer: str, intent: str,
                        before: tuple[Example, ...]) -> Example:
        request, typos = self.decorate(pieces)
        return Example(request, calls, answer, intent, (), typos, before)

    def literal_pieces(self, template: str) -> list[_Piece]:
        return [self.literal_or_synonym(p) for p in template_parts(template)]

    def changeable_args(self, tool, intent: Intent, t: _Turn) -> list[Arg]:
        """Args a follow-up can give a new value: said in the request, not fixed by the intent, and
        more than a 0/1 switch (that is an undo)."""
        said = {p.name for p in template_parts(t.template) if isinstance(p, Ref)}
        return [a for a in tool.args if a.name in said and a.name not in intent.fixed_args
                and a.kind in ("int", "duration") and a.max - a.min > 1]

    def scaled_duration(self, arg: Arg, value: str) -> tuple[str, list[_Piece]] | None:
        """"twice as long", "half as long", "5 more minutes" after a one-unit duration."""
        rng = self.rng
        (n, u), = _parse_duration(value)
        if rng.random() < 0.6:
            templates, factor = rng.choice(pb.SCALE_FOLLOWUPS)
            if factor < 1 and n % 2:
                return None
            m = int(n * factor)
            pieces = self.literal_pieces(rng.choice(templates))
        else:
            k = self.say_count(30)
            m = n + k
            pieces = _fill(rng.choice(pb.EXTEND_FOLLOWUPS), {"amount": [(self.amount(k, u), True)]})
        new = pb.duration_call([(m, u)])
        if not (m >= 1 and arg.min <= pb.duration_seconds([(m, u)]) <= arg.max):
            return None
        return new, pieces

    def undo(self, tool, intent: Intent, t: _Turn) -> tuple[list[_Piece], str, str, str] | None:
        """The previous call reversed: the intent of the other polarity with the same other args, the
        other level of a 0/1 arg, or a toggle once more. None: the tool cannot undo it."""
        rng = self.rng
        args = {a.name: t.values[a.name] for a in tool.args}
        if intent.polarity:
            other = "off" if intent.polarity == "on" else "on"
            sibs = [i for i in tool.intents if i.polarity == other]
            if sibs:
                sib = sibs[0]
                args.update(sib.fixed_args)
                call, result, answer = self.outcome(tool, sib, args)
                template = rng.choice(pb.UNDO_TO[other] if rng.random() < 0.6 else pb.UNDO)
                return self.literal_pieces(template), call, result, answer
        flips = [a for a in tool.args if a.kind == "int" and a.min == 0 and a.max == 1 and a.name not in intent.fixed_args]
        toggles = [a for a in tool.args if a.kind == "enum" and args.get(a.name) == "toggle"]
        if flips:
            args[flips[0].name] = 1 - int(args[flips[0].name])
        elif not toggles:
            return None
        call, result, answer = self.outcome(tool, intent, args)
        return self.literal_pieces(rng.choice(pb.UNDO)), call, result, answer

    def parse_result_value(self, tool, slot: Arg, result: str) -> int:
        """The (scaled) value of a numeric slot in a result this generator wrote."""
        pattern = "".join(re.escape(p) if not isinstance(p, Ref) else
                          ("(-?[0-9.]+)" if p.name == slot.name else ".*?") for p in template_parts(tool.result))
        text = re.fullmatch(pattern, result).group(1)
        return int(text.replace(".", "")) if slot.kind == "decimal" else int(text)

    def threshold(self, slot: Arg, value: int) -> tuple[int, str]:
        """A number to compare a result with, near it so that both answers are common: (scaled, as said)."""
        scale = 10 ** slot.places
        lo, hi = -(-slot.min // scale), slot.max // scale
        center = value // scale
        span = 8 if slot.kind == "decimal" else max(5, abs(center) // 2)
        n = min(hi, max(lo, center + self.rng.randint(-span, span)))
        return n * scale, (self.number_text(n) if n >= 0 else str(n))

    def conditional(self) -> Example | None:
        """"if the temp is over 25, turn on pin 5": read, then act only if the result says so."""
        rng = self.rng
        r_intent, slot = rng.choice(self.conditions)
        rtool = self.spec.tool(r_intent.tool)
        w_intents = [i for i in self.action_intents if i.tool != rtool.name]
        if not w_intents:
            return None
        rt, wt = self.turn(r_intent), self.turn(self.weighted(w_intents))
        value = rt.values[slot.name]
        if len(rtool.result_slots) == 1:
            noun = self.literal_pieces(rng.choice([f"the {rtool.name}"] * 2 + plain_nouns(rtool)))
        elif any(t.name == slot.name for t in self.spec.tools):  # "led" in a status: the led tool's own nouns
            noun = self.literal_pieces(rng.choice([f"the {slot.name}"] + plain_nouns(self.spec.tool(slot.name))))
        else:
            noun = [(f"the {slot.name}", False)]
        slots = {"check": _lower_first(_split_end(rt.pieces)[0]), "then": _lower_first(_split_end(wt.pieces)[0]),
                 "noun": noun}
        if slot.kind == "enum":
            want = value if rng.random() < 0.5 else rng.choice(slot.values)
            holds = value == want
            pieces = _fill(rng.choice(pb.ENUM_CONDITIONS), dict(slots, value=[(str(want), True)]))
            fmt = dict(value=value, want=want, noun="".join(t for t, _ in noun).capitalize(), answer=wt.answer)
            answer = rng.choice(pb.ENUM_TRUE_ANSWERS if holds else pb.ENUM_FALSE_ANSWERS).format(**fmt)
        else:
            rel, words = rng.choice(pb.RELATIONS)
            word = rng.choice(words)
            n, n_text = self.threshold(slot, int(value))
            holds = int(value) > n if rel == ">" else int(value) < n
            pieces = _fill(rng.choice(pb.CONDITIONS), dict(slots, rel=[(word, False)], n=[(n_text, True)]))
            fmt = dict(value=self.answer_text(slot, value, slot.unit), rel=word, n=format_value(slot, n),
                       answer=wt.answer)
            answer = rng.choice(pb.CONDITION_TRUE_ANSWERS if holds else pb.CONDITION_FALSE_ANSWERS).format(**fmt)
        calls = (rt.call, wt.call) if holds else (rt.call,)
        request, typos = self.decorate(pieces)
        return Example(request, calls, answer, f"if_{'true' if holds else 'false'}:{r_intent.name}>{wt.intent}",
                       (rt.template, wt.template), typos)

    # -- one intent --

    def turn(self, intent: Intent, values: dict | None = None, template: str | None = None) -> _Turn:
        """One intent rendered; `values` forces arg values (a correction's second request)."""
        rng = self.rng
        template = template or rng.choice(self.phrasings[intent.name])
        if not intent.tool:
            pieces = [self.literal_or_synonym(p) for p in template_parts(template)]
            return _Turn(pieces, None, rng.choice(intent.answers), template, intent.name)

        tool = self.spec.tool(intent.tool)
        arg_names = {a.name for a in tool.args}  # any other placeholder is a synonym (validated)
        forced = dict(values or {})
        values = dict(intent.fixed_args)
        texts: dict[str, str] = {}
        before: dict[str, str] = {}
        pieces: list[_Piece] = []
        for p in template_parts(template):
            if isinstance(p, Ref) and p.name in arg_names:
                arg = tool.arg(p.name)
                if p.name in forced:
                    values[p.name], text = forced[p.name], self.value_text(arg, p.unit, forced[p.name])
                else:
                    values[p.name], text = self.request_value(arg, p.unit, values.get(p.name))
                texts[p.name] = text
                words = "".join(t for t, _ in pieces).split()
                before[p.name] = words[-1] if words and words[-1].isalpha() else ""
                pieces.append((text, True))
            else:
                pieces.append(self.literal_or_synonym(p))
        call, result, answer = self.outcome(tool, intent, values)
        return _Turn(pieces, (call, result), answer, template, intent.name, values, texts, before)

    def outcome(self, tool, intent: Intent, values: dict) -> tuple[str, str, str]:
        """(call, result, answer) of `intent` with every arg in `values`; fills in the result slots."""
        for s in tool.result_slots:
            values[s.name] = intent.fixed_result.get(s.name, self.result_value(s))
        call = " ".join(format_value(tool.slot(p.name), values[p.name]) if isinstance(p, Ref) else p
                        for tok in tool.call.split(" ") for p in template_parts(tok))
        result = "".join(format_value(tool.slot(p.name), values[p.name]) if isinstance(p, Ref) else p
                         for p in template_parts(tool.result))
        answer = "".join(self.answer_text(tool.slot(p.name), values[p.name], p.unit) if isinstance(p, Ref)
                         else p for p in template_parts(self.rng.choice(intent.answers)))
        return call, result, answer

    def literal_or_synonym(self, p: str | Ref) -> _Piece:
        if isinstance(p, Ref):
            return self.rng.choice(self.synonyms[p.name]), False
        return p, False

    def request_value(self, arg: Arg, unit: str, fixed: int | str | None) -> tuple[int | str, str]:
        """(the arg's value, how the request says it)."""
        if arg.kind == "enum":
            value = fixed if fixed is not None else self.rng.choice(arg.values)
            return value, str(value)
        if arg.kind == "duration":
            return self.duration(arg, unit, fixed)
        if not unit:
            value = fixed if fixed is not None else self.request_int(arg.min, arg.max)
            return value, self.int_text(arg, int(value))
        # "{seconds:minutes}": pick the number as a person would say it in minutes, then convert.
        f_arg, f_show = UNITS[arg.unit], UNITS[unit]
        if f_show >= f_arg:
            k = f_show // f_arg
            lo, hi = unit_range(arg, unit)  # people say "90 minutes", not "1175 minutes"
            shown = int(fixed) // k if fixed is not None else self.request_int(lo, min(hi, max(lo, SAY_MAX)))
            value = shown * k
        else:
            value = int(fixed) if fixed is not None else self.request_int(arg.min, arg.max)
            shown = value * (f_arg // f_show)
        forms = self.style.unit_forms(unit)
        form = forms[0] if self.rng.random() < P_CANONICAL_UNIT else self.rng.choice(forms)
        singular, plural = form.split("/")
        return value, f"{self.number_text(shown)} {singular if shown == 1 else plural}"

    def value_text(self, arg: Arg, unit: str, value: int | str) -> str:
        """How a request says a forced value (a correction's second request repeats the new one)."""
        if arg.kind == "enum":
            return str(value)
        if arg.kind == "duration":
            return self.duration_words(_parse_duration(str(value)))
        if not unit:
            return self.int_text(arg, int(value))
        f_arg, f_show = UNITS[arg.unit], UNITS[unit]
        shown = int(value) * f_arg // f_show if f_show <= f_arg else int(value) // (f_show // f_arg)
        singular, plural = self.style.unit_forms(unit)[0].split("/")
        return f"{self.number_text(shown)} {singular if shown == 1 else plural}"

    # -- durations: "an hour and a half" -> 1h30m (phrasebook.py) --

    def duration(self, arg: Arg, unit: str, fixed: int | str | None) -> tuple[str, str]:
        """(the call's duration text, e.g. "1h30m", and how the request says it)."""
        if fixed is not None:
            parts = _seconds_parts(int(fixed))
            return pb.duration_call(parts), self.duration_words(parts)
        hint = {"hours": "h", "minutes": "m", "seconds": "s"}.get(unit, "")
        for _ in range(50):
            parts, text = self.adjective_duration(arg.max) if unit == "adj" else self.duration_shape(hint, arg.max)
            if arg.min <= pb.duration_seconds(parts) <= arg.max:
                return pb.duration_call(parts), text
        n = self.request_int(arg.min, min(arg.max, 600))
        return pb.duration_call([(n, "s")]), f"{self.number_text(n)} seconds"

    def duration_shape(self, hint: str, hi: int) -> tuple[list[tuple[int, str]], str]:
        rng = self.rng
        r = rng.random()
        caps = {"h": max(1, min(24, hi // 3600)), "m": 120, "s": 600}
        if r < 0.5:  # one unit: "90 mins", "45s", "two hours"
            u = hint if hint and rng.random() < 0.6 else rng.choice("hms")
            n = self.say_count(caps[u])
            return [(n, u)], self.amount(n, u)
        if r < 0.72:  # compound: "1h 15m", "an hour and 20 minutes", "2 min 30 s"
            big, small = rng.choice((("h", "m"), ("m", "s"), ("h", "m"), ("m", "s"), ("h", "s")))
            a = self.say_count(caps[big] if big == "h" else 59 if big == "m" and small == "s" else 120)
            b = rng.randint(1, 59)
            if rng.random() < 0.3:
                b = rng.choice((5, 10, 15, 20, 30, 40, 45, 50))
            glue = rng.choice((" ", " and ", ", ", " "))
            if rng.random() < 0.25:  # "1h15m", "1h 15m", "2h30"
                tail = small if big != "h" or small != "m" or rng.random() < 0.7 else ""
                return [(a, big), (b, small)], f"{a}{big}{rng.choice(('', ' '))}{b}{tail}"
            first = self.amount(a, big) if not (a == 1 and rng.random() < 0.4) else \
                ("an hour" if big == "h" else "a minute" if big == "m" else "a second")
            return [(a, big), (b, small)], f"{first}{glue}{self.amount(b, small)}"
        # fractions: "half an hour", "three quarters of an hour", "2.5 min", "a minute and a half"
        u, sub = rng.choice((("h", "m"), ("m", "s"), ("h", "m")))
        word = pb.UNIT_WORDS[u]
        a_unit = "an hour" if u == "h" else "a minute"
        shapes = [
            ([(30, sub)], f"half {a_unit}"), ([(30, sub)], f"half {a_unit}"),
            ([(15, sub)], f"a quarter of {a_unit}"), ([(15, sub)], f"quarter of {a_unit}"),
            ([(45, sub)], f"three quarters of {a_unit}"),
            ([(1, u), (30, sub)], f"{a_unit} and a half"), ([(1, u), (30, sub)], f"one and a half {word[1]}"),
            ([(1, u), (30, sub)], f"1.5 {self.unit_form(u, 2)}"), ([(1, u), (15, sub)], f"{a_unit} and a quarter"),
            ([(1, u)], a_unit), ([(1, u)], f"one {word[0]}"),
        ]
        n = rng.randint(2, 9 if u == "m" else max(2, min(9, caps["h"] - 1)))
        frac = rng.choice(((30, ".5", " and a half"), (15, ".25", " and a quarter"), (45, ".75", " and three quarters")))
        if frac[2] and rng.random() < 0.5:
            shapes.append(([(n, u), (frac[0], sub)], f"{self.number_text(n)}{frac[2]} {word[1]}"))
        else:
            shapes.append(([(n, u), (frac[0], sub)], f"{n}{frac[1]} {self.unit_form(u, 2)}"))
        shapes.append(shapes[-1])
        shapes.append(([(30, sub)], f"0.5 {self.unit_form(u, 2)}"))
        shapes.append(([(1, u), (45, sub)], f"{a_unit} and three quarters"))
        parts, text = rng.choice(shapes)
        return parts, text

    def adjective_duration(self, hi: int) -> tuple[list[tuple[int, str]], str]:
        """A duration said before a noun: "a 10 minute timer", "a ten-minute countdown", "a half-hour
        timer", "a 2 and a half minute timer"."""
        rng = self.rng
        r = rng.random()
        if r < 0.12:
            return rng.choice((([(30, "m")], "half-hour"), ([(15, "m")], "quarter-hour"),
                               ([(15, "m")], "quarter hour"), ([(30, "m")], "half hour"), ([(30, "s")], "half-minute")))
        u = rng.choice("hmms")
        caps = {"h": max(1, min(24, hi // 3600)), "m": 120, "s": 600}
        n = self.say_count(caps[u])
        word = pb.UNIT_WORDS[u][0]
        if r < 0.22 and u in "hm":  # "2 and a half minute"
            sub = "m" if u == "h" else "s"
            return [(n, u), (30, sub)], f"{self.number_text(n)} and a half {word}"
        text = self.number_text(n)
        form = rng.choice((word, word, pb.UNIT_FORMS[u][1][0]))
        sep = "-" if rng.random() < 0.3 and not text.isdigit() or rng.random() < 0.15 else " "
        return [(n, u)], f"{text}{sep}{form}"

    def say_count(self, cap: int) -> int:
        return self.rng.randint(1, min(cap, 30)) if self.rng.random() < 0.6 else self.rng.randint(1, cap)

    def unit_form(self, u: str, n: int) -> str:
        forms = pb.UNIT_FORMS[u]
        singular, plural = forms[0] if self.rng.random() < 0.6 else self.rng.choice(forms)
        return singular if n == 1 else plural

    def amount(self, n: int, u: str) -> str:
        form = self.unit_form(u, n)
        text = self.number_text(n)
        if len(form) <= 3 and text.isdigit() and self.rng.random() < 0.4:
            return text + form  # "90mins", "45s"
        return f"{text} {form}"

    def duration_words(self, parts: list[tuple[int, str]]) -> str:
        return " ".join(self.amount(n, u) for n, u in parts)

    def request_int(self, lo: int, hi: int) -> int:
        if self.rng.random() < P_SMALL_NUMBER:
            return self.rng.randint(lo, min(hi, lo + SMALL_SPAN - 1))
        return self.spread_int(lo, hi)

    def spread_int(self, lo: int, hi: int) -> int:
        """Uniform over the number of digits, then within: 7-digit and 1-digit values both common,
        so the model sees every length it must copy."""
        if lo < 0 or hi - lo < 100:
            return self.rng.randint(lo, hi)
        digits = self.rng.randint(len(str(lo)), len(str(hi)))
        return self.rng.randint(max(lo, 10 ** (digits - 1) if digits > 1 else 0), min(hi, 10**digits - 1))

    def int_text(self, arg: Arg, n: int) -> str:
        """A unitless int as a request says it: a 0..1 arg (a pin's level, a relay) is often a level
        word, "set pin 5 to true", "gpio 3 LOW" (the call still says 0 or 1)."""
        rate = self.style.level_word_rate
        if (arg.min, arg.max) == (0, 1) and n in (0, 1) and rate > 0 and self.rng.random() < rate:
            return self.rng.choice(pb.LEVEL_WORDS[n])
        return self.number_text(n)

    def number_text(self, n: int) -> str:
        words = self.style.number_words
        if 0 <= n <= 999 and self.rng.random() < self.style.number_word_rate:
            return words[n] if n < len(words) else pb.number_in_words(n, self.rng)
        if 1100 <= n <= 9900 and n % 100 == 0 and n % 1000 and self.rng.random() < self.style.number_word_rate:
            return pb.number_in_words(n // 100) + " hundred"  # "fifteen hundred"
        return str(n)

    def result_value(self, slot: Arg) -> int | str:
        if slot.kind == "enum":
            return self.rng.choice(slot.values)
        if slot.kind == "decimal":
            return self.rng.randint(slot.min, slot.max)
        return self.spread_int(slot.min, slot.max)

    def answer_text(self, slot: Arg, value: int | str, unit: str) -> str:
        if slot.kind == "duration":
            return pb.duration_answer(_parse_duration(str(value)))
        text = format_value(slot, value)
        if not unit:
            return text
        singular, plural = self.style.unit_forms(unit)[0].split("/")
        return f"{text} {singular if value == 1 else plural}"

    # -- the whole request --

    def request(self, cores: list[list[_Piece]]) -> tuple[str, int]:
        pieces = cores[0] if len(cores) == 1 else self.join(cores[0], cores[1])
        return self.decorate(pieces)

    def decorate(self, pieces: list[_Piece]) -> tuple[str, int]:
        rng = self.rng
        pieces = self.vary_end(pieces)
        if rng.random() < self.style.filler_rate:
            pieces = self.filler(pieces)
        if rng.random() < P_CLOSER and self.style.closers:
            pieces = self.close(pieces, rng.choice(self.style.closers))
        if rng.random() < P_OPENER and self.style.openers:
            pieces = [(rng.choice(self.style.openers) + " ", False)] + pieces
        if rng.random() < self.style.wake_rate:
            pieces = [(rng.choice(pb.WAKE_WORDS) + " ", False)] + _lower_first(pieces)
        if rng.random() < P_CONTEXT and self.style.context:
            rest = _capitalize(pieces) if rng.random() < 0.5 else pieces
            pieces = [(rng.choice(self.style.context) + " ", False)] + rest
        typos = 0
        if rng.random() < self.style.typo_rate:
            for _ in range(2 if rng.random() < P_SECOND_TYPO else 1):
                pieces, made = self.typo(pieces)
                typos += made
        text = "".join(t for t, _ in pieces)
        casing = rng.choices([c for c, _ in CASINGS], weights=[w for _, w in CASINGS])[0]
        if casing == "capital":
            text = text[:1].upper() + text[1:]
        elif casing == "lower":
            text = text.lower()
        elif casing == "upper":
            text = text.upper()
        return text, typos

    def filler(self, pieces: list[_Piece]) -> list[_Piece]:
        """ "could you um turn on the light": a filler word at a space of an unprotected piece."""
        spots = [(i, m.start()) for i, (text, protected) in enumerate(pieces) if not protected
                 for m in re.finditer(" ", text)]
        if not spots:
            return pieces
        i, at = self.rng.choice(spots)
        text = pieces[i][0]
        return pieces[:i] + [(text[:at] + " " + self.rng.choice(pb.FILLERS) + text[at:], False)] + pieces[i + 1:]

    def join(self, first: list[_Piece], second: list[_Piece]) -> list[_Piece]:
        body, end = _split_end(first)
        joiner = self.rng.choice(self.style.joiners)
        if joiner in (".", "!", "?"):  # two sentences: keep the first one's own mark if it had one
            return body + [((end or joiner) + " ", False)] + _capitalize(second)
        sep = joiner + " " if joiner[0] in ",;:" else " " + joiner + " "
        return body + [(sep, False)] + second

    def vary_end(self, pieces: list[_Piece]) -> list[_Piece]:
        body, end = _split_end(pieces)
        r = self.rng.random()
        if end and r < P_DROP_END:
            end = ""
        elif not end and r < P_ADD_END:
            end = self.rng.choice(".!")
        return body + [(end, False)] if end else body

    @staticmethod
    def close(pieces: list[_Piece], closer: str) -> list[_Piece]:
        body, end = _split_end(pieces)
        if closer[0] in ".!?":  # ". Thanks!" after a question keeps the question mark
            return body + [((end or closer[0]) + closer[1:], False)]
        sep = "" if closer[0] in ",;:" else " "
        return body + [(sep + closer + end, False)]

    def typo(self, pieces: list[_Piece]) -> tuple[list[_Piece], bool]:
        """One realistic slip in an unprotected word of 4+ letters: swap two neighbours, drop a letter,
        double a letter, or hit an adjacent key. (pieces, whether a slip was made)."""
        spots = [(i, m.start(), m.end()) for i, (text, protected) in enumerate(pieces) if not protected
                 for m in re.finditer(r"[A-Za-z]{3,}", text)]
        if not spots:
            return pieces, False
        i, start, end = self.rng.choice(spots)
        text = pieces[i][0]
        kind = self.rng.choice(("swap", "drop", "double", "key"))
        at = self.rng.randrange(start, end - 1) if kind == "swap" else self.rng.randrange(start, end)
        if kind == "swap" and text[at].lower() == text[at + 1].lower():
            kind = "drop"  # swapping "ll" would change nothing
        if kind == "swap":
            text = text[:at] + text[at + 1] + text[at] + text[at + 2:]
        elif kind == "drop":
            text = text[:at] + text[at + 1:]
        elif kind == "double":
            text = text[:at] + text[at] + text[at:]
        else:
            c = text[at]
            near = self.rng.choice(_NEIGHBOURS[c.lower()])
            text = text[:at] + (near.upper() if c.isupper() else near) + text[at + 1:]
        return pieces[:i] + [(text, False)] + pieces[i + 1:], True


def _split_end(pieces: list[_Piece]) -> tuple[list[_Piece], str]:
    """(pieces, trailing . ? ! of the last piece) with the marks removed from the pieces."""
    if not pieces or pieces[-1][1]:
        return pieces, ""
    text = pieces[-1][0]
    stripped = text.rstrip(".?!")
    end = text[len(stripped):]
    return (pieces[:-1] + [(stripped, False)] if stripped else pieces[:-1]), end


def _capitalize(pieces: list[_Piece]) -> list[_Piece]:
    if not pieces:
        return pieces
    text, protected = pieces[0]
    return [(text[:1].upper() + text[1:], protected)] + pieces[1:]


def _keyboard_neighbours() -> dict[str, str]:
    """Keys next to each letter on a QWERTY keyboard (same row, and the row above and below)."""
    out: dict[str, str] = {}
    for r, row in enumerate(_KEY_ROWS):
        for i, c in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            for other in (r - 1, r + 1):
                if 0 <= other < len(_KEY_ROWS):
                    near += [_KEY_ROWS[other][j] for j in (i - 1, i, i + 1) if 0 <= j < len(_KEY_ROWS[other])]
            out[c] = "".join(near)
    return out


_NEIGHBOURS = _keyboard_neighbours()


def _lower_first(pieces: list[_Piece]) -> list[_Piece]:
    """The first letter lowercased ("Turn on" after "don't"), unless it is a protected value or an
    acronym ("LED")."""
    if not pieces or pieces[0][1]:
        return pieces
    text = pieces[0][0]
    if len(text) > 1 and text[:2].isupper():
        return pieces
    return [(text[:1].lower() + text[1:], False)] + pieces[1:]


def _frame(frame: str, slot: str, pieces: list[_Piece]) -> list[_Piece]:
    """The pieces placed at {slot} of a frame such as "don't {request}"; the end mark of the
    request moves to the end of the frame."""
    body, end = _split_end(pieces)
    before, _, after = frame.partition("{" + slot + "}")
    out = ([(before, False)] if before else []) + body + ([(after, False)] if after else [])
    if end and not after:
        out.append((end, False))
    return out


def _replace_slot(pieces: list[_Piece], slot: str, insert: list[_Piece]) -> list[_Piece]:
    out: list[_Piece] = []
    for text, protected in pieces:
        if not protected and slot in text:
            before, _, after = text.partition(slot)
            out += ([(before, False)] if before else []) + insert + ([(after, False)] if after else [])
        else:
            out.append((text, protected))
    return out


def _all_parts(templates: tuple[str, ...]):
    for t in templates:
        yield from template_parts(t)


def _parse_duration(text: str) -> list[tuple[int, str]]:
    """"1h30m" -> [(1, "h"), (30, "m")]."""
    return [(int(n), u) for n, u in re.findall(r"([0-9]+)([hms])", text)]


def _seconds_parts(seconds: int) -> list[tuple[int, str]]:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return [(n, u) for n, u in ((h, "h"), (m, "m"), (s, "s")) if n] or [(seconds, "s")]


def _fill(template: str, slots: dict[str, list[_Piece]]) -> list[_Piece]:
    """A template such as "make it {value} instead" with its {slots} replaced by pieces."""
    out: list[_Piece] = []
    for i, part in enumerate(re.split(r"\{([a-z_]+)\}", template)):
        if i % 2:
            out += slots[part]
        elif part:
            out.append((part, False))
    return out


def _condition_slots(tool) -> list[Arg]:
    """Result slots a condition can test: the number of a tool whose whole result is one number, and
    any enum slot ("if the led is off")."""
    slots = list(tool.result_slots)
    numeric = [s for s in slots if s.kind in ("int", "decimal")] if len(slots) == 1 else []
    return numeric + [s for s in slots if s.kind == "enum"]
