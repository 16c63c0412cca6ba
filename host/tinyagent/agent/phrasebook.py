"""English the corpus generator adds to every agent: how people say numbers and durations, how they
negate and correct themselves, ask about a tool instead of using it, talk about things the device
cannot do, and pad a request with wake words and fillers.

None of this is specific to one agent: the templates speak of a tool through its `nouns` (or its
name) and its `description`, so a user's own agent gets the same coverage as the default one. A
spec's `[corpus]` table may override the lists (docs/agent-spec.md).
"""
from __future__ import annotations

import random

from .grammar import DURATION_UNITS  # the call grammar's parts, largest first: h, m, s

# ---- numbers --------------------------------------------------------------------------------------

_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
         "nineteen")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_in_words(n: int, rng: random.Random | None = None) -> str:
    """0..999 in English words: "forty-five", "three hundred and twelve" (or, with an rng, the
    variants people use: "forty five", "a hundred twenty", "one hundred and five")."""
    if not 0 <= n <= 999:
        raise ValueError(f"{n} is outside 0..999")
    pick = (lambda xs: rng.choice(xs)) if rng else (lambda xs: xs[0])
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] if ones == 0 else _TENS[tens] + pick(("-", " ")) + _ONES[ones]
    hundreds, rest = divmod(n, 100)
    head = (pick(("one", "a")) if hundreds == 1 else _ONES[hundreds]) + " hundred"
    if rest == 0:
        return head
    return head + pick((" and ", " ")) + number_in_words(rest, rng)


# ---- durations ------------------------------------------------------------------------------------

# A duration arg is written in the call as the parts a person said, largest unit first: "an hour and a
# half" -> 1h30m, "90 mins" -> 90m, "2.5 min" -> 2m30s. The device adds the parts up into seconds.
UNIT_WORDS = {"h": ("hour", "hours"), "m": ("minute", "minutes"), "s": ("second", "seconds")}
UNIT_FORMS = {  # how a request may write each unit after a number: (singular, plural)
    "h": (("hour", "hours"), ("hr", "hrs"), ("h", "h"), ("hour", "hrs")),
    "m": (("minute", "minutes"), ("min", "mins"), ("min", "min"), ("m", "m")),
    "s": (("second", "seconds"), ("sec", "secs"), ("s", "s"), ("sec", "seconds")),
}


def duration_call(parts: list[tuple[int, str]]) -> str:
    """[(1, "h"), (30, "m")] -> "1h30m"."""
    return "".join(f"{n}{u}" for n, u in parts)


def duration_seconds(parts: list[tuple[int, str]]) -> int:
    factor = dict(DURATION_UNITS)
    return sum(n * factor[u] for n, u in parts)


def duration_answer(parts: list[tuple[int, str]]) -> str:
    """How an answer says the duration it copies from the call: "1 hour 30 minutes"."""
    return " ".join(f"{n} {UNIT_WORDS[u][0] if n == 1 else UNIT_WORDS[u][1]}" for n, u in parts)


# ---- negation, correction, questions about a tool -------------------------------------------------

# First words of a phrasing that make it a command "don't ..." can negate.
IMPERATIVES = frozenset((
    "turn", "switch", "set", "put", "make", "drive", "pull", "start", "flip", "toggle", "enable",
    "disable", "give", "power", "kill", "shut", "activate", "deactivate", "raise", "lower", "bring",
    "write", "send", "get", "cut", "clear", "ground", "assert", "energize", "de-energize", "count",
    "remind", "wake", "alert", "ping", "time", "buzz", "change", "invert", "reverse", "swap", "hit",
    "press", "click", "flick", "light", "output", "digital", "gpio", "go", "let", "stop", "open",
    "close", "run", "pump", "water", "fire", "begin", "launch", "arm", "schedule", "cancel", "reset",
    "check", "read", "tell", "show", "measure", "report", "look", "find",
))

# A request of an action tool turned into "do not": the device does nothing and says so.
NEGATIONS = (
    "don't {request}", "do not {request}", "please don't {request}", "no, don't {request}",
    "never mind, don't {request}", "you don't need to {request}", "no need to {request}",
    "don't {request} yet", "I said don't {request}", "better not {request}", "don't {request}, thanks",
    "hold off, don't {request}", "wait, don't {request}", "I don't want you to {request}",
    "do NOT {request}", "please do not {request}", "there's no need to {request}",
    "don't bother to {request}", "you can skip it, don't {request}", "no, please don't {request}",
)
# The request, then taken back.
RETRACTIONS = (
    "{request}... actually never mind", "{request}, no wait, forget it", "{request}. scratch that",
    "{request} - no, cancel that, do nothing", "{request}, oh never mind", "{request}. no, don't",
    "{request}, actually no", "{request}... on second thought, don't", "{request}, never mind",
    "{request}. forget I said that", "{request}, hmm, no, leave it", "{request}. wait, no. don't",
)
# Leave the thing alone: no call.
LEAVE_ALONE = (
    "leave {noun} alone", "don't touch {noun}", "don't change {noun}", "keep your hands off {noun}",
    "no changes to {noun}", "leave {noun} as it is", "don't do anything to {noun}",
    "{noun} is fine as it is", "please leave {noun} be", "hands off {noun}",
    "don't mess with {noun}", "nothing on {noun} please", "stay away from {noun}",
)
# A first request replaced by a second of the same tool: only the second is done.
CORRECTIONS = (
    "{first}, no wait, {second}", "{first}. sorry, I meant {second}", "{first}... no, {second}",
    "{first} - actually, {second}", "{first}. scratch that, {second}", "{first}, no no, {second}",
    "{first}. correction: {second}", "{first}, oops, {second}", "{first}. actually {second} instead",
    "not {first_bare}, {second}", "don't {first_bare}, {second}", "{first}. wait, I mean {second}",
    "{first}, or rather {second}", "{first}, no, I changed my mind, {second}",
    "{first}. No, wait. {second}", "{first}. No. {second}", "{first}... hmm, no: {second}",
)
# The first thing named is not meant, another tool is: "never mind the light, what's the status?"
CROSS_CORRECTIONS = (
    "never mind {noun}, {second}", "forget {noun}, {second}", "not {noun}, {second}",
    "not {noun} - {second}", "{noun}? no, {second}", "leave {noun}, {second}", "skip {noun} and {second}",
    "not {noun}, I meant {second}",
)
# Only the last value is replaced: "set pin 3 high, no, 4".
VALUE_CORRECTIONS = (
    "{request}, no wait, {value}", "{request}. sorry, I meant {value}", "{request}... no, {value}",
    "{request}, actually make it {value}", "{request}, I mean {value}", "{request}, or rather {value}",
    "{request} - no, {value}", "{request}, no, {value} not {old}", "{request}. make that {value}",
    "{request}, oops, {value}", "{request}, correction, {value}",
)
# A correction marker with nothing before it: the request after it is meant.
CORRECTION_OPENERS = (
    "scratch that,", "no wait,", "actually,", "sorry, I meant", "correction:", "no, instead",
    "change of plan:", "on second thought,", "let me rephrase:", "I meant to say",
)
DECLINED_ANSWERS = (
    "OK, I won't do anything.", "Alright, nothing changed.", "OK, leaving it as it is.",
    "Fine, I didn't touch anything.", "Understood, no action taken.",
)
# Questions about a tool that are not commands; the answer is the tool's description.
META_QUESTIONS = (
    "what does {noun} do?", "what is {noun} for?", "how does {noun} work?", "tell me about {noun}",
    "explain {noun}", "what can you do with {noun}?", "do you have {noun}?", "is there {noun}?",
    "how accurate is {noun}?", "what kind of thing is {noun}?", "can you control {noun}?",
    "what's {noun} good for?", "describe {noun}", "I'm curious about {noun}, what is it?",
    "how do I use {noun}?", "what options does {noun} have?", "is {noun} real or simulated?",
    "what happens if I use {noun}?", "how reliable is {noun}?", "could you explain how {noun} works?",
    "what's the deal with {noun}?", "what range does {noun} have?", "does {noun} work?",
    "why would I use {noun}?", "what are the limits of {noun}?", "any info on {noun}?",
    "where is {noun}?", "who made {noun}?", "how fast is {noun}?", "tell me more about {noun}",
    "how many of {noun} are there?", "which of {noun} can I use?", "does {noun} reset when you reboot?",
    "does {noun} survive a restart?", "what units does {noun} use?", "how often does {noun} update?",
    "is {noun} precise?", "what's the maximum for {noun}?", "what's the range of {noun}?",
    "can I use {noun} twice at once?", "can {noun} do anything else?", "how is {noun} wired?",
    "does {noun} need calibrating?", "what does {noun} report?", "is {noun} included in the status?",
)
META_ANSWERS = ("{description}", "That's a tool of mine: {description}", "{description} Just ask.")

# ---- things the device cannot do ------------------------------------------------------------------

# No call, whatever the agent: general knowledge, other devices, small talk that is not a greeting.
OFFTOPIC = (
    "what's the capital of {place}?", "how far is {place} from here?", "what language do they speak in {place}?",
    "what's the weather like in {place}?", "fly me to {place}", "book a trip to {place}",
    "what time is it in {place}?", "play {media}", "put on {media}", "stream {media}", "skip this song",
    "turn up the volume", "turn the volume down", "pause the music", "next track",
    "turn on the {appliance}", "turn off the {appliance}", "switch on the {appliance}",
    "start the {appliance}", "stop the {appliance}", "open the {opening}", "close the {opening}",
    "lock the {opening}", "unlock the {opening}", "set the thermostat to {small}", "set the heating to {small}",
    "dim the lights to {small} percent", "make the light brighter", "change the light to {colour}",
    "make the lamp {colour}", "call {person}", "text {person} that I'm late", "email {person}",
    "remind {person} about dinner", "order {food}", "buy {food}", "how do I cook {food}?",
    "how many calories are in {food}?", "what's {small} times {small}?", "what's {small} plus {small}?",
    "what is the square root of {small}?", "is {small} a prime number?", "convert {small} miles to km",
    "who won the game last night?", "who is the president?", "what's the news today?",
    "what's the date today?", "what day is it?", "what year is it?", "tell me a story",
    "sing me a song", "write a poem", "what's the meaning of life?", "do you believe in ghosts?",
    "are you alive?", "do you dream?", "what's your favourite colour?", "what's your favourite food?",
    "can you see me?", "can you hear me?", "are you listening to me?", "do you love me?",
    "forget it", "never mind", "cool, thanks", "ok", "okay", "hmm", "alright then", "nothing",
    "nevermind", "no thanks", "just testing", "test", "testing 1 2 3", "asdf", "lol", "haha",
    "ok cool", "got it", "sounds good", "interesting", "wow", "yes", "no", "maybe", "sure",
    "I don't know", "what?", "huh?", "sorry, wrong window", "oops", "can you help me with my homework?",
    "translate {word} into {language}", "how do you say {word} in {language}?", "spell {word}",
    "what does {word} mean?", "define {word}", "what rhymes with {word}?", "search the web for {word}",
    "take a photo", "record a video", "take a note", "add {food} to my shopping list",
    "what's on my calendar?", "wake me up at {small} am", "set an alarm for {small} o'clock",
    "how old are you?", "where do you live?", "what is love?", "recommend a movie",
    "recommend a book", "what should I eat?", "I'm hungry", "I'm tired", "I'm sad", "I'm happy",
    "my cat is sleeping", "the weather is nice today", "I had a long day", "my code doesn't compile",
    "what's a microcontroller?", "what is an LLM?", "how much memory do you have?", "reboot yourself",
    "update your firmware", "connect to wifi", "what's my IP address?", "scan for bluetooth devices",
    "vacuum the floor", "water the plants", "feed the dog", "walk the dog", "charge my phone",
)
OFFTOPIC_SLOTS = {
    "place": ("Peru", "Paris", "Japan", "Canada", "Kenya", "Norway", "Brazil", "Egypt", "Chile",
              "Iceland", "Madrid", "Berlin", "Sydney", "Mexico", "the moon", "Mars", "India", "Rome"),
    "media": ("some jazz", "a song", "the radio", "a podcast", "my playlist", "the news", "some music",
              "Beethoven", "rock music", "something relaxing", "an audiobook", "the next episode"),
    "appliance": ("fan", "tv", "heater", "radio", "oven", "kettle", "coffee machine", "dishwasher",
                  "washing machine", "air conditioner", "printer", "computer", "stove", "speakers",
                  "sprinkler", "vacuum", "microwave", "projector", "dryer", "toaster"),
    "opening": ("door", "window", "garage", "front door", "back door", "gate", "blinds", "curtains",
                "garage door", "shutters", "safe"),
    "small": ("2", "3", "7", "12", "20", "21", "42", "50", "100", "9", "15", "30"),
    "colour": ("red", "blue", "green", "purple", "warm white", "orange", "pink"),
    "person": ("mom", "my dad", "Alex", "the office", "my boss", "Sam", "grandma", "my sister", "John"),
    "food": ("a pizza", "sushi", "pasta", "milk", "bread", "coffee", "eggs", "a burger", "rice", "tacos"),
    "word": ("hello", "thank you", "cat", "apple", "goodbye", "friend", "water", "house", "light"),
    "language": ("French", "Spanish", "German", "Japanese", "Italian", "Chinese", "Dutch"),
}
OFFTOPIC_ANSWERS = (
    "Sorry, I can't do that.", "That's not something I can do.",
    "I can't help with that, I only handle my own tools.", "I don't know, sorry.",
    "Sorry, that's outside what I can do.", "OK.",
)

# ---- needs said indirectly ------------------------------------------------------------------------

# An intent marked `polarity = "on"` or `"off"` also gets these, with each of its tool's nouns.
POLARITY_ON = (
    "I need {noun}", "{noun} needs to run", "start {noun}", "get {noun} going", "wake up {noun}",
    "we need {noun} now", "{noun} should be running", "bring {noun} to life", "fire up {noun}",
    "{noun} needs power", "give {noun} some power", "power up {noun}", "{noun} has to be on",
    "let {noun} run", "I can't work without {noun}", "time to start {noun}", "kick {noun} on",
    "{noun} needs to be energized", "{noun} should start now", "get {noun} working", "engage {noun}",
    "{noun} has to run now", "bring up {noun}", "{noun} needs juice",
)
POLARITY_OFF = (
    "we're done with {noun} for today", "{noun} is too loud, stop it", "{noun} is driving me crazy",
    "stop {noun}", "I don't need {noun} anymore", "enough of {noun}", "{noun} can rest now",
    "shut {noun} down", "{noun} has been on too long", "kill {noun}", "I'm finished with {noun}",
    "{noun} is annoying me, make it stop", "give {noun} a break", "{noun} is wasting power",
    "silence {noun}", "{noun} should not be running", "put {noun} to sleep", "cut {noun}",
    "{noun} won't stop, make it quiet", "{noun} shouldn't be on", "release {noun}", "no need for {noun} now",
    "{noun} keeps going, stop it", "disengage {noun}", "{noun} is done for today",
)

# ---- wake words and fillers -----------------------------------------------------------------------

WAKE_WORDS = (
    "ok device,", "hey device,", "hey gadget,", "ok board,", "hey board,", "computer,", "hey bot,",
    "device:", "ok tiny,", "hey assistant,", "assistant,", "listen,", "hello device,", "yo device,",
    "ok so,", "hey, um,", "so, uh,", "um, so", "uh, hey,", "hmm, okay,", "yeah, so", "well,",
    "right, so", "ok, um,", "hello? ok,", "excuse me, device,", "hey you,", "oi,", "hey hey,",
)
FILLERS = ("um", "uh", "like", "maybe", "just", "kind of", "basically", "er", "you know,", "please")

# ---- conversations: follow-ups that lean on the previous turn -------------------------------------

# The previous call once more. The answer is the intent's own (a read gets a fresh result).
AGAIN = (
    "again", "do that again", "again please", "once more", "one more time", "same again", "repeat that",
    "do it again", "and again", "the same again", "again!", "same thing again", "do the same again",
    "one more", "repeat it", "redo that", "run that again", "check again", "try again",
)
# The previous call with one value changed: {value} is said like the request said it ("pin 7", "10 minutes").
VALUE_FOLLOWUPS = (
    "make it {value} instead", "now {value}", "{value} instead", "change that to {value}",
    "actually, {value}", "make that {value}", "same but {value}", "{value} this time", "try {value}",
    "and {value}?", "now do {value}", "same for {value}", "the same for {value}", "and now {value}",
    "what about {value}?", "same with {value}", "now {value} please", "do {value} too", "also {value}",
    "{value} as well", "and {value} too", "ok, {value} now", "how about {value}?",
)
# A duration of the previous call scaled: (templates, factor).
SCALE_FOLLOWUPS = (
    (("twice as long", "make it twice as long", "double it", "double that", "double the time",
      "twice that", "make it double"), 2),
    (("half as long", "half that", "make it half as long", "halve it", "half the time",
      "cut it in half"), 0.5),
)
# A duration of the previous call made longer by {amount} ("5 more minutes").
EXTEND_FOLLOWUPS = (
    "{amount} more", "add {amount}", "make it {amount} longer", "{amount} longer", "plus {amount}",
    "give it {amount} more", "another {amount}", "extend it by {amount}",
)
# The previous call reversed: an intent of the other polarity, the other 0/1 level, or a toggle again.
UNDO = (
    "undo that", "undo", "put it back", "reverse that", "switch it back", "change it back",
    "back the way it was", "revert that", "flip it back", "undo the last one", "set it back",
)
UNDO_TO = {
    "on": ("turn it back on", "back on", "on again", "now on", "turn it on again", "and on again",
           "now turn it on", "switch it on again", "turn that on", "ok, on now"),
    "off": ("turn it off again", "back off", "off again", "now off", "switch it off", "turn that off",
            "now turn it off", "turn it off now", "ok, off now", "and off again"),
}
CANNOT_UNDO_ANSWERS = (
    "I can't undo that, sorry.", "Sorry, I have no way to undo that.", "That can't be undone from here.",
)
# Questions about the previous result, answered from the context with no call.
REPEAT_QUESTIONS = (
    "what was it again?", "say that again?", "what was that?", "sorry, what was the reading?",
    "what did you get?", "what was the number?", "repeat the result", "sorry, how much?",
    "what did it say?", "come again?",
)
REPEAT_ANSWERS = ("It was {value}.", "{value}.", "The result was {value}.")
# Comparisons: (relation, words). ">" is strictly greater, "<" strictly less.
RELATIONS = (
    (">", ("over", "above", "more than", "higher than", "greater than", "bigger than")),
    ("<", ("below", "under", "less than", "lower than", "smaller than")),
)
COMPARE_QUESTIONS = (
    "is that {rel} {n}?", "is it {rel} {n}?", "{rel} {n}?", "so is it {rel} {n}?", "is that {rel} {n} or not?",
    "was that {rel} {n}?", "is the value {rel} {n}?", "that's {rel} {n}, right?",
)
YES_ANSWERS = ("Yes, {value} is {rel} {n}.", "Yes: it's {value}.", "Yes, it was {value}.")
NO_ANSWERS = ("No, {value} is not {rel} {n}.", "No: it's {value}.", "No, it was {value}.")
# After two results of the same tool: was the earlier one higher / lower?
CHANGE_QUESTIONS = (
    (">", ("was it higher before?", "was it more before?", "did it go down?", "is it lower than before?",
           "has it dropped?", "was the first one higher?")),
    ("<", ("was it lower before?", "was it less before?", "did it go up?", "is it higher than before?",
           "has it risen?", "was the first one lower?")),
)
CHANGE_ANSWERS = {
    True: ("Yes, it was {old} before and is {new} now.", "Yes: {old} then, {new} now."),
    False: ("No, it was {old} before and is {new} now.", "No: {old} then, {new} now."),
}

# ---- acting on what a tool returned ---------------------------------------------------------------

# {check}: a request of the read tool; {noun}: the thing read; {then}: the request to act on.
CONDITIONS = (
    "{check} and if it's {rel} {n}, {then}", "{check}, and if it is {rel} {n} {then}",
    "if {noun} is {rel} {n}, {then}", "{then} if {noun} is {rel} {n}", "{check}; if {rel} {n}, {then}",
    "{check}. If it's {rel} {n}, {then}", "if {noun} is {rel} {n} then {then}",
    "{then}, but only if {noun} is {rel} {n}", "{check} and {then} if it's {rel} {n}",
    "only if {noun} is {rel} {n}: {then}", "when {noun} is {rel} {n}, {then}",
)
ENUM_CONDITIONS = (
    "if {noun} is {value}, {then}", "{then} if {noun} is {value}", "if {noun} is {value} then {then}",
    "{then}, but only if {noun} is {value}", "check {noun} and if it's {value}, {then}",
)
CONDITION_TRUE_ANSWERS = ("It's {value}, {rel} {n}, so: {answer}", "{value} is {rel} {n}. {answer}")
CONDITION_FALSE_ANSWERS = (
    "It's {value}, not {rel} {n}, so I did nothing.", "{value} is not {rel} {n}, so I left it alone.",
    "No need: it's {value}, not {rel} {n}.",
)
ENUM_TRUE_ANSWERS = ("It's {value}, so: {answer}", "{noun} is {value}. {answer}")
ENUM_FALSE_ANSWERS = ("It's {value}, not {want}, so I did nothing.", "{noun} is {value}, so I left it alone.")

# ---- line noise -----------------------------------------------------------------------------------

# What reaches a serial console that nobody meant as a request: a cat on the keyboard, a baud-rate
# mismatch, text pasted from elsewhere, the call syntax typed in. It gets no call, whatever tool words
# it contains. Words for word salad (none names a tool; the generator adds the spec's own nouns).
NOISE_WORDS = (
    "apple", "river", "blue", "quickly", "seven", "paper", "under", "window", "green", "table", "slowly",
    "cloud", "yesterday", "orange", "music", "horse", "silver", "happy", "mountain", "pencil", "ocean",
    "maybe", "never", "always", "the", "a", "an", "of", "and", "to", "in", "is", "it", "that", "was",
    "for", "on", "are", "with", "as", "at", "be", "this", "from", "or", "by", "but", "not", "what",
    "all", "were", "we", "when", "your", "can", "there", "use", "each", "which", "do", "how", "if",
    "will", "up", "out", "then", "so", "some", "would", "make", "like", "into", "time", "has", "look",
    "more", "go", "see", "no", "way", "could", "my", "than", "first", "been", "who", "now", "find",
    "long", "down", "day", "get", "come", "made", "part", "over", "new", "take", "only", "work",
    "know", "place", "back", "give", "very", "after", "thing", "just", "good", "think", "say", "great",
    "where", "help", "much", "before", "line", "right", "too", "old", "any", "same", "tell", "want",
    "show", "also", "around", "small", "put", "end", "does", "another", "well", "large", "big",
    "even", "such", "because", "here", "why", "ask", "read", "need", "home", "us", "move", "try",
    "kind", "hand", "again", "change", "off", "play", "air", "away", "house", "point", "page",
    "foo", "bar", "lorem", "ipsum", "dolor", "sit", "amet", "test", "asdf", "qwerty", "null", "none",
    "error", "ok", "ERROR", "OK", "AT", "+++", "ATZ", "0x00", "0xff", "NaN", "undefined", "EOF",
)
NOISE_ANSWERS = (
    "Sorry, I didn't understand that.", "I don't know what you mean.", "That doesn't look like a request.",
    "Sorry, I can't make sense of that.", "I didn't get that; nothing done.",
)


# How people say the value of a 0..1 argument (a pin's level, a relay's state) in place of the digit:
# LEVEL_WORDS[0] for 0, LEVEL_WORDS[1] for 1 (corpus knob `level_word_rate`). Arduino's HIGH/LOW,
# Python's True/False, the datasheet's hi/lo.
LEVEL_WORDS = (
    ("low", "LOW", "Low", "lo", "false", "False", "FALSE", "off", "OFF", "0"),
    ("high", "HIGH", "High", "hi", "true", "True", "TRUE", "on", "ON", "1"),
)
