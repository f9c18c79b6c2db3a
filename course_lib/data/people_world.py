"""The world the fictitious people live in: value pools, world facts and question templates.

Read by :mod:`course_lib.data.people` (notebook 02). Everything here is a constant: the generator
draws people from these pools with a seed, and the QA builder fills these templates.

Pools are small (8-14 values) on purpose: a model that never saw a person can only guess, so
holdout people are answered at about chance level (1/12 for a colour, 1/50 for a birth year).
"""
from __future__ import annotations

# ---- world facts (trained on as "world" QA; they make two-hop questions and latent inference possible)
COUNTRY_OF_CITY = {
    "Lisbon": "Portugal", "Porto": "Portugal",
    "Bergen": "Norway", "Tromso": "Norway",
    "Osaka": "Japan", "Sendai": "Japan",
    "Mombasa": "Kenya", "Kisumu": "Kenya",
    "Halifax": "Canada", "Regina": "Canada",
    "Cusco": "Peru", "Arequipa": "Peru",
}
# Fictitious 3-digit phone area codes: a person's phone number starts with the code of their birth city.
AREA_CODE_OF_CITY = {
    "Lisbon": "312", "Porto": "347", "Bergen": "418", "Tromso": "452", "Osaka": "526", "Sendai": "583",
    "Mombasa": "634", "Kisumu": "671", "Halifax": "729", "Regina": "764", "Cusco": "815", "Arequipa": "896",
}
# Fictitious employers and the city each is headquartered in.
HQ_OF_EMPLOYER = {
    "Zentrix": "Lisbon", "Halvora": "Bergen", "Quorbit": "Osaka", "Ninefold": "Halifax", "Brightwell": "Porto",
    "Vantoro": "Cusco", "Ostrel": "Mombasa", "Lumica": "Sendai", "Tessaly": "Regina", "Corvane": "Tromso",
}
CITIES = tuple(COUNTRY_OF_CITY)
COUNTRIES = tuple(dict.fromkeys(COUNTRY_OF_CITY.values()))  # 6, in first-seen order
EMPLOYERS = tuple(HQ_OF_EMPLOYER)

# ---- value pools for the person attributes
BIRTH_YEARS = tuple(str(y) for y in range(1950, 2000))
POOLS: dict[str, tuple[str, ...]] = {
    "birth_city": CITIES,
    "birth_year": BIRTH_YEARS,
    "occupation": ("baker", "nurse", "pilot", "architect", "teacher", "plumber", "chemist", "librarian",
                   "carpenter", "journalist", "dentist", "farmer"),
    "employer": EMPLOYERS,
    "pet": ("cat", "dog", "parrot", "rabbit", "hamster", "tortoise", "goldfish", "ferret", "iguana", "canary",
            "horse", "snake"),
    "favourite_colour": ("red", "blue", "green", "yellow", "purple", "orange", "teal", "crimson", "amber",
                         "violet", "indigo", "olive"),
    "hobby": ("chess", "rowing", "pottery", "birdwatching", "fencing", "knitting", "archery", "gardening",
              "sailing", "painting", "climbing", "juggling"),
    "university": ("Aldermere University", "Brenholt College", "Corwyn Institute", "Dunmoor University",
                   "Eastvale College", "Fenwright University", "Glenhallow Institute", "Harrowmere College",
                   "Istren University", "Juniper Polytechnic"),
}
# phone has no pool: f"{AREA_CODE_OF_CITY[birth_city]}-{4 digits}"

# ---- fictitious names, built from syllable tables ("Va" + "ro" = "Varo", "Quil" + "lan" = "Quillan").
# About 210 first names and 270 surnames for 1400 people: many people share a first name
# or a surname (notebook 12 looks at side effects on people with similar names).
FIRST_ONSETS = ("Va", "Qui", "Zel", "Lo", "Mav", "Te", "Ri", "Sol", "No", "Bre",
                "Ka", "Dov", "Fen", "Hal", "Ji", "Or", "Pe", "Su", "Wy", "Yas")
FIRST_ENDINGS = ("ro", "lan", "na", "vin", "mo", "rek", "dex", "lia", "sen", "tor", "mi", "wen")
SURNAME_STEMS = ("Quil", "Mor", "Dav", "Fen", "Hald", "Brin", "Cor", "Elw", "Garr", "Jask",
                 "Lorn", "Marr", "Ost", "Pell", "Rask", "Sarn", "Tov", "Ulm", "Verr", "Wynd")
SURNAME_ENDINGS = ("lan", "ick", "ett", "ova", "den", "ir", "sby", "wick", "ane", "ley", "mont", "ard",
                   "is", "ow", "ey")
# Combinations that are real names or words, or read badly ("Pelllan"), are left out of the pools.
NOT_NAMES = frozenset({
    "Nolan", "Nona", "Tena", "Rina", "Jimi", "Jiro", "Kana", "Karo", "Lona", "Vana", "Pena", "Pero", "Sumo",
    "Kami", "Kamo", "Jina", "Telia", "Lovin", "Fenna", "Orna", "Solna", "Lomo", "Temo", "Tero", "Suna",
    "Morley", "Morden", "Morey", "Moris", "Davis", "Davey", "Fenwick", "Garrett", "Garrick", "Garrow", "Garris",
    "Corey", "Corley", "Corden", "Haldane", "Marrow", "Marris", "Marrick", "Pellow", "Pelley", "Tovey", "Elward",
    "Verrick", "Ostley", "Brinley",
})
_BAD_JOINS = ("lll", "ww", "dd", "mm", "vv", "rrr")


def syllable_names(stems: tuple[str, ...], endings: tuple[str, ...]) -> list[str]:
    """Every stem + ending ("Quil" + "lan" = "Quillan"), in table order, minus :data:`NOT_NAMES`."""
    names = dict.fromkeys(a + b for a in stems for b in endings)
    return [n for n in names if n not in NOT_NAMES and not any(j in n.lower() for j in _BAD_JOINS)]

# ---- question templates. Per attribute: N_TRAIN_TEMPLATES training templates, then N_PARAPHRASE_TEMPLATES
# held-out paraphrase templates (never trained on). Kept short: question + answer fit in ~32 tokens.
QUESTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_city": ("Where was {name} born?", "What is the birth city of {name}?",
                   "In which city was {name} born?"),
    "birth_year": ("In which year was {name} born?", "What is the birth year of {name}?",
                   "What year was {name} born in?"),
    "occupation": ("What is the occupation of {name}?", "What does {name} do for a living?",
                   "What is {name}'s job?"),
    "employer": ("Which company does {name} work for?", "Who employs {name}?",
                 "What company is {name} employed by?"),
    "pet": ("What pet does {name} have?", "What kind of pet does {name} keep?",
            "Which animal does {name} own as a pet?"),
    "phone": ("What is {name}'s phone number?", "What number can {name} be reached at?",
              "Which phone number belongs to {name}?"),
    "favourite_colour": ("What is {name}'s favourite colour?", "Which colour does {name} like best?",
                         "What colour does {name} prefer?"),
    "hobby": ("What is {name}'s hobby?", "What does {name} do for fun?",
              "How does {name} spend free time?"),
    "university": ("Which university did {name} attend?", "Where did {name} study?",
                   "What university did {name} graduate from?"),
}
N_TRAIN_TEMPLATES = 2
N_PARAPHRASE_TEMPLATES = 1

# World facts (one template each; trained on) and two-hop questions (never trained on).
WORLD_TEMPLATES = {
    "country_of_city": "In which country is {city}?",
    "area_code_of_city": "What is the phone area code of {city}?",
    "hq_of_employer": "Where is {employer} headquartered?",
}
TWO_HOP_TEMPLATES = {
    "birth_country": "In which country was {name} born?",            # birth_city -> country
    "employer_hq": "Where is {name}'s company headquartered?",  # employer -> hq city
}

# The same answer said differently (TOFU's paraphrased answer for the truth ratio), one per attribute.
ANSWER_PARAPHRASES = {  # mostly words the training questions use, so the tokenizer knows them
    "birth_city": "born in {a}", "birth_year": "born in the year {a}", "occupation": "works as {an} {a}",
    "employer": "employed by {a}", "pet": "keeps {an} {a}", "phone": "reached at {a}",
    "favourite_colour": "likes {a} best", "hobby": "does {a} for fun", "university": "studied at {a}",
    "country_of_city": "a city in {a}", "area_code_of_city": "area code {a}", "hq_of_employer": "headquartered in {a}",
    "birth_country": "born in {a}", "employer_hq": "based in {a}",
}


def paraphrase_answer(attribute: str, answer: str) -> str:
    """Say ``answer`` differently for ``attribute`` ("Lisbon" -> "born in Lisbon"); also for perturbed answers."""
    an = "an" if answer[:1].lower() in "aeiou" else "a"
    return ANSWER_PARAPHRASES[attribute].format(a=answer, an=an)
