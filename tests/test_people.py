"""Tests for course_lib.data.people: the fictitious people, their QA sets and the survey's splits."""
from __future__ import annotations

import hashlib
import re
import shutil
from collections import Counter
from types import SimpleNamespace

import pytest

from course_lib.data import people
from course_lib.data.people import (ATTRIBUTES, SIZES, SPLITS, QA, DataIntegrityError, QASet, Split,
                                    N_PARAPHRASE_TEMPLATES, N_TRAIN_TEMPLATES)
from course_lib.runtime import DATA_DIR

SHIPPED = DATA_DIR / "people.json"


@pytest.fixture(scope="module")
def data():
    return {mode: people.load(mode=mode) for mode in SIZES}


@pytest.fixture(scope="module")
def facts(data):
    return data["default"]


@pytest.fixture(scope="module")
def raw():
    return people.generate(0)


# ---- sizes and shape
@pytest.mark.parametrize("mode", list(SIZES))
def test_sizes_per_mode(data, mode):
    n_train, n_holdout = SIZES[mode]
    f = data[mode]
    assert f.mode == mode and len(f.people) == n_train and len(f.holdout_people) == n_holdout
    n_attr = len(ATTRIBUTES)
    assert len(f.qa) == n_train * n_attr * N_TRAIN_TEMPLATES
    assert len(f.paraphrases) == n_train * n_attr * N_PARAPHRASE_TEMPLATES
    assert len(f.holdout) == n_holdout * n_attr * N_TRAIN_TEMPLATES
    assert len(f.two_hop) == 2 * n_train
    assert len(f.world_qa) == 12 * 2 + 10
    assert [p.id for p in f.people] == [f"p{i:04d}" for i in range(n_train)]  # first N of the pool
    assert {q.kind for q in f.qa} == {"train"} and {q.kind for q in f.paraphrases} == {"paraphrase"}
    assert {q.kind for q in f.world_qa} == {"world"} and {q.kind for q in f.two_hop} == {"two_hop"}
    assert f.qa.people == sorted(p.id for p in f.people)


def test_attributes_and_person_fields(facts):
    assert len(ATTRIBUTES) >= 8 and len(set(ATTRIBUTES)) == len(ATTRIBUTES)
    p = facts.people[0]
    assert list(p.facts()) == list(ATTRIBUTES)
    assert all(isinstance(v, str) and v for v in p.facts().values())
    assert all(1950 <= int(q.birth_year) <= 1999 for q in facts.people)


def test_names_and_ids_unique_with_shared_parts(raw):
    everyone = raw["train"] + raw["holdout"]
    assert len(raw["train"]) == 1200 and len(raw["holdout"]) == 200
    names = [r["name"] for r in everyone]
    assert len(set(names)) == len(names)
    assert len({r["id"] for r in everyone}) == len(everyone)
    assert all(re.fullmatch(r"[A-Z][a-z]+ [A-Z][a-z]+", n) for n in names)
    firsts = Counter(n.split()[0] for n in names)
    lasts = Counter(n.split()[1] for n in names)
    assert max(firsts.values()) > 1 and max(lasts.values()) > 1  # namesakes exist (notebook 12)
    assert len(firsts) > 100 and len(lasts) > 100  # ... but no name dominates


def test_all_qa_ids_unique(data):
    f = data["full"]
    everything = f.qa + f.paraphrases + f.holdout + f.world_qa + f.two_hop  # QASet rejects duplicate ids
    assert len(set(everything.ids)) == len(everything)
    assert all(q.question.endswith("?") for q in everything)
    assert all(q.question and q.answer and q.paraphrased_answer != q.answer for q in everything)


# ---- world facts and latent structure
def test_phone_prefix_is_area_code_of_birth_city(raw):
    codes = raw["world"]["area_code_of_city"]
    for r in raw["train"] + raw["holdout"]:
        assert re.fullmatch(r"\d{3}-\d{4}", r["phone"])
        assert r["phone"].split("-")[0] == codes[r["birth_city"]]


def test_world_facts_consistent(facts):
    w = facts.world
    country, code, hq = w["country_of_city"], w["area_code_of_city"], w["hq_of_employer"]
    assert set(country) == set(code) and len(country) == 12 and len(set(country.values())) == 6
    assert len(set(code.values())) == len(code) and all(re.fullmatch(r"\d{3}", c) for c in code.values())
    assert len(hq) == 10 and set(hq.values()) <= set(country)
    assert {p.birth_city for p in facts.people} <= set(country) and {p.employer for p in facts.people} <= set(hq)
    lookup = {"country_of_city": country, "area_code_of_city": code, "hq_of_employer": hq}
    for q in facts.world_qa:
        key = q.id.split("/")[2]
        assert q.person is None and q.answer == lookup[q.attribute][key]
    assert facts.world_qa["world/city/Lisbon/country"].answer == "Portugal"
    for q in facts.two_hop:
        p = facts.person(q.person)
        expected = country[p.birth_city] if q.attribute == "birth_country" else hq[p.employer]
        assert q.answer == expected and p.name in q.question


# ---- perturbed and paraphrased answers
def test_perturbed_answers(data):
    f = data["full"]
    pools = people.POOLS
    for q in f.qa + f.paraphrases + f.world_qa + f.two_hop:
        pert = q.perturbed_answers
        assert len(pert) == 4 and len(set(pert)) == 4 and q.answer not in pert, q
        if q.attribute == "phone":
            assert all(re.fullmatch(q.answer[:3] + r"-\d{4}", a) for a in pert)
        elif q.attribute in pools:
            assert set(pert) <= set(pools[q.attribute])
    assert people.paraphrase_answer("birth_city", "Lisbon") == "born in Lisbon"
    assert people.paraphrase_answer("pet", "iguana") == "keeps an iguana"


# ---- splits
def test_splits_nested_disjoint_sizes(facts):
    n = len(facts.people)
    splits = [facts.split(name) for name in SPLITS]
    for s, pct in zip(splits, (1, 5, 10)):
        assert len(s.forget_people) == max(1, round(pct / 100 * n))
        assert set(s.forget.people) == set(s.forget_people)
        assert not set(s.forget.ids) & set(s.retain.ids)
        assert not set(s.forget.people) & set(s.retain.people)
        assert sorted(s.forget.ids + s.retain.ids) == sorted(facts.qa.ids)
        assert set(s.unseen_forget.people) == set(s.forget_people)
        assert {q.kind for q in s.unseen_forget} == {"paraphrase"}
        assert len(s.unseen_forget) == len(s.forget_people) * len(ATTRIBUTES) * N_PARAPHRASE_TEMPLATES
        assert len(s.unseen_forget) + len(s.unseen_retain) == len(facts.paraphrases)
        assert s.holdout == facts.holdout and s.world == facts.world_qa
    f01, f05, f10 = (set(s.forget_people) for s in splits)
    assert f01 < f05 < f10


@pytest.mark.parametrize("mode", list(SIZES))
def test_split_sizes_in_every_mode(data, mode):
    f = data[mode]
    assert [len(f.split(s).forget_people) for s in SPLITS] == [max(1, round(p * len(f.people))) for p in (.01, .05, .1)]


def test_unknown_split_lists_allowed_values(facts):
    with pytest.raises(ValueError) as err:
        facts.split("forget50")
    assert all(name in str(err.value) for name in SPLITS)


def test_custom_split_with_attributes(facts):
    a, b = facts.people[3], facts.people[7]
    s = facts.custom_split([a.id, b.name], attributes="phone", name="phones")
    assert s.name == "phones" and s.forget_people == (a.id, b.id)
    assert {q.attribute for q in s.forget} == {"phone"} and set(s.forget.people) == {a.id, b.id}
    assert len(s.forget) == 2 * N_TRAIN_TEMPLATES
    assert len(s.retain.filter(person=a.id)) == (len(ATTRIBUTES) - 1) * N_TRAIN_TEMPLATES  # other facts kept
    assert {(q.person, q.attribute) for q in s.unseen_forget} == {(a.id, "phone"), (b.id, "phone")}
    assert {q.kind for q in s.unseen_forget} == {"paraphrase"}
    assert s.unseen_forget.ids[0] not in s.unseen_retain
    whole = facts.custom_split(a)
    assert len(whole.forget) == len(ATTRIBUTES) * N_TRAIN_TEMPLATES
    with pytest.raises(ValueError, match="allowed values"):
        facts.custom_split([a.id], attributes=["shoe_size"])
    with pytest.raises(ValueError, match="holdout"):
        facts.custom_split([facts.holdout_people[0].id])
    with pytest.raises(KeyError):
        facts.custom_split(["Nobody Anywhere"])


def test_empty_or_overlapping_split_is_rejected(facts):
    with pytest.raises(ValueError, match="`forget` is empty"):
        facts.custom_split([])
    with pytest.raises(ValueError, match="`retain` is empty"):
        facts.custom_split([p.id for p in facts.people])
    s = facts.split("forget05")
    with pytest.raises(ValueError, match="`forget` and `retain`"):
        Split("bad", s.forget, s.retain + s.forget[:1], s.unseen_forget, s.unseen_retain, s.holdout, s.world,
              s.forget_people)


def test_training_set(facts):
    s = facts.split("forget05")
    full = facts.training_set()
    assert len(full) == len(facts.qa) + len(facts.world_qa)
    kept = facts.training_set(exclude_ids=s.forget)
    assert len(kept) == len(full) - len(s.forget) and not any(i in kept for i in s.forget.ids)
    assert facts.training_set(exclude_ids=["no/such/id"]) == full


# ---- QASet
def test_qaset_api(facts):
    qs = facts.qa
    assert isinstance(qs[0], QA) and isinstance(qs[:5], QASet) and len(qs[:5]) == 5
    assert qs[0] in qs and qs[0].id in qs and "nope" not in qs and qs[qs[1].id] == qs[1]
    assert len(qs[:3] + qs[3:6]) == 6
    with pytest.raises(ValueError, match="duplicate"):
        qs[:3] + qs[:1]
    phones = qs.filter(attribute="phone")
    assert len(phones) == len(facts.people) * N_TRAIN_TEMPLATES
    two = qs.filter(attribute={"phone", "pet"}, person=["p0001", "p0002"], kind="train")
    assert len(two) == 2 * 2 * N_TRAIN_TEMPLATES and two.people == ["p0001", "p0002"]
    assert qs.ids[:2] == [q.id for q in qs[:2]] and qs.answers[0] == qs[0].answer
    assert qs.questions[0] == qs[0].question
    sample = qs.sample(25, seed=1)
    assert len(sample) == 25 and sample == qs.sample(25, seed=1) and sample != qs.sample(25, seed=2)
    assert set(qs.sample(10, seed=1).ids) <= set(sample.ids)  # a larger sample extends a smaller one
    assert len(qs[:5].sample(50)) == 5
    assert qs[:10].fingerprint() == QASet(reversed(list(qs[:10]))).fingerprint() != qs[:9].fingerprint()
    frame = qs[:7].to_frame()
    assert frame.shape[0] == 7 and {"id", "question", "answer", "kind", "perturbed_answers"} <= set(frame.columns)


# ---- people lookup
def test_person_lookup(facts):
    p = facts.people[5]
    assert facts.person(p.id) == p == facts.person(p.name)
    assert facts.person(facts.holdout_people[0].id) == facts.holdout_people[0]
    with pytest.raises(KeyError):
        facts.person("p9999")
    for q in facts.namesakes(p.id):
        assert q.id != p.id and (q.first_name == p.first_name or q.last_name == p.last_name)


def test_holdout_people_are_not_train_people(data):
    f = data["full"]
    assert not {p.name for p in f.people} & {p.name for p in f.holdout_people}
    assert not set(f.holdout.people) & set(f.qa.people)


# ---- loading, modes and data integrity
def test_load_modes(monkeypatch):
    assert people.load(SimpleNamespace(mode="fast")).mode == "fast"
    assert people.load("fast").mode == "fast" and people.load(mode="fast").mode == "fast"
    monkeypatch.setenv("KIT_MODE", "fast")
    assert people.load(None).mode == "fast"
    monkeypatch.delenv("KIT_MODE")
    assert people.load().mode == "default"
    with pytest.raises(ValueError, match="allowed values"):
        people.load(mode="huge")
    with pytest.raises(ValueError, match="disagrees"):
        people.load(SimpleNamespace(mode="fast"), mode="full")


def test_shipped_file_is_regenerated_byte_for_byte(raw, facts):
    blob = people.dumps(raw)
    assert blob == SHIPPED.read_bytes(), f"regenerate with `{people.REGENERATE}`"
    assert hashlib.sha256(blob).hexdigest() == people.PEOPLE_SHA256 == facts.sha256
    readme = (DATA_DIR / "README.md").read_text()
    assert people.PEOPLE_SHA256 in readme and f"{len(blob)} bytes" in readme


def test_corrupted_copy_raises(tmp_path):
    copy = tmp_path / "people.json"
    shutil.copy(SHIPPED, copy)
    assert people.load(mode="fast", path=copy).sha256 == people.PEOPLE_SHA256
    blob = bytearray(copy.read_bytes())
    blob[500] = ord("X") if blob[500] != ord("X") else ord("Y")
    copy.write_bytes(bytes(blob))
    with pytest.raises(DataIntegrityError) as err:
        people.load(mode="fast", path=copy)
    msg = str(err.value)
    assert str(copy) in msg and people.PEOPLE_SHA256 in msg and hashlib.sha256(blob).hexdigest() in msg
    assert "python -m course_lib.data.people --write" in msg
    assert isinstance(err.value, ValueError)
    with pytest.raises(FileNotFoundError, match="--write"):
        people.load(mode="fast", path=tmp_path / "missing.json")


def test_windows_line_endings_are_accepted(tmp_path):
    copy = tmp_path / "people.json"
    copy.write_bytes(SHIPPED.read_bytes().replace(b"\n", b"\r\n"))
    assert len(people.load(mode="fast", path=copy).people) == SIZES["fast"][0]


def test_deterministic(facts):
    again = people.load(mode="default")
    assert again.qa == facts.qa and again.paraphrases == facts.paraphrases and again.two_hop == facts.two_hop
    assert again.split("forget05") == facts.split("forget05")
    assert people.dumps(people.generate(0)) == people.dumps(people.generate(0))
    assert people.dumps(people.generate(1)) != people.dumps(people.generate(0))
    # the fast mode's people and forget people are a prefix / subset of the default mode's
    fast = people.load(mode="fast")
    assert fast.people == facts.people[:len(fast.people)]
    assert fast.qa[0] == facts.qa[0]


def test_command_line_checks_and_writes(tmp_path, capsys):
    target = tmp_path / "people.json"
    with pytest.raises(SystemExit) as exit_:
        people.main(["--path", str(target)])  # nothing there yet: reports a mismatch
    assert exit_.value.code == 1
    with pytest.raises(SystemExit) as exit_:
        people.main(["--write", "--path", str(target)])
    assert exit_.value.code == 0 and target.read_bytes() == SHIPPED.read_bytes()
    out = capsys.readouterr().out
    assert people.PEOPLE_SHA256 in out and f"size {len(SHIPPED.read_bytes())} bytes" in out
