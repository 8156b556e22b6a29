"""Procedural vocabulary: people's names, artists, songs; embedded locations and user agents.

Locations ("City, ST" metro areas) and user-agent strings are embedded in ``vocab.json`` (taken from the
public Eventsim sample's format); names, artists and song titles are built from syllables and words with a
seeded generator, so nothing is downloaded and the same seed gives the same vocabulary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

_ONSETS = ("", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "br",
           "ch", "cl", "dr", "gr", "kr", "sh", "st", "th", "tr")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ie", "ou", "y")
_CODAS = ("", "", "n", "l", "r", "s", "th", "ck", "nd", "rt", "ll", "ss", "m", "x")
_FEMALE_ENDS = ("a", "ie", "elle", "ina", "ey", "ah", "ette", "lyn")
_MALE_ENDS = ("o", "on", "er", "an", "iel", "us", "en", "ric")
_SURNAME_ENDS = ("son", "man", "ley", "ton", "ford", "field", "er", "s", "wood", "ell", "ard")
_WORDS = ("love", "night", "fire", "heart", "dream", "rain", "road", "blue", "gold", "light", "river",
          "shadow", "summer", "stone", "city", "wild", "broken", "echo", "silver", "dance", "home", "storm",
          "ghost", "sun", "moon", "time", "sky", "young", "forever", "electric", "lonely", "sweet", "black",
          "fever", "paradise", "ocean", "radio", "magic", "glory", "honey", "midnight", "velvet", "winter",
          "angel", "desert", "diamond", "highway", "neon", "thunder", "crystal")  # fmt: skip
_ARTIST_FORMS = ("The {W}s", "{N}", "{N} & The {W}s", "DJ {N}", "{W} {W}", "{N} {S}")


def _syllable_name(rng: np.random.Generator, n: int, ends: tuple[str, ...]) -> list[str]:
    """``n`` pronounceable capitalised names: onset-vowel-coda syllable(s) plus an ending."""
    on = rng.integers(0, len(_ONSETS), n)
    vo = rng.integers(0, len(_VOWELS), n)
    co = rng.integers(0, len(_CODAS), n)
    en = rng.integers(0, len(ends), n)
    two = rng.random(n) < 0.35
    on2 = rng.integers(0, len(_ONSETS), n)
    vo2 = rng.integers(0, len(_VOWELS), n)
    out = []
    for i in range(n):
        stem = _ONSETS[on[i]] + _VOWELS[vo[i]] + _CODAS[co[i]]
        if two[i]:
            stem += _ONSETS[on2[i]] + _VOWELS[vo2[i]]
        out.append((stem + ends[en[i]]).capitalize())
    return out


def person_names(rng: np.random.Generator, genders: np.ndarray) -> tuple[list[str], list[str]]:
    """First and last names for users with ``genders`` ('M'/'F'); a small pool reused like real data."""
    pool = 400
    female = _syllable_name(rng, pool, _FEMALE_ENDS)
    male = _syllable_name(rng, pool, _MALE_ENDS)
    surnames = _syllable_name(rng, pool * 2, _SURNAME_ENDS)
    pick = rng.integers(0, pool, len(genders))
    first = [female[p] if g == "F" else male[p] for p, g in zip(pick, genders, strict=True)]
    last = [surnames[i] for i in rng.integers(0, len(surnames), len(genders))]
    return first, last


@lru_cache(maxsize=1)
def embedded_vocab() -> dict[str, list[str]]:
    """The embedded locations and user agents (``vocab.json`` beside this module)."""
    data = json.loads((Path(__file__).with_name("vocab.json")).read_text())
    return {"locations": list(data["locations"]), "user_agents": list(data["user_agents"])}


@dataclass(frozen=True)
class Catalogue:
    """Songs with their artist and length (seconds); ``artist``/``song``/``length`` end with a null row."""

    artist: pl.Series
    song: pl.Series
    length: pl.Series
    n_songs: int


def build_catalogue(rng: np.random.Generator, n_artists: int, n_songs: int) -> Catalogue:
    """A song catalogue: ``n_songs`` titles over ``n_artists`` artists, lengths ~ lognormal (mean ~250 s).

    Index ``n_songs`` of every series is null (used for events that are not songs).
    """
    words = np.array([w.capitalize() for w in _WORDS])
    base_names = np.array(_syllable_name(rng, n_artists, _MALE_ENDS + _FEMALE_ENDS))
    forms = rng.integers(0, len(_ARTIST_FORMS), n_artists)
    w1 = words[rng.integers(0, len(words), n_artists)]
    w2 = words[rng.integers(0, len(words), n_artists)]
    surn = _syllable_name(rng, n_artists, _SURNAME_ENDS)
    artists = []
    seen: set[str] = set()
    for i in range(n_artists):
        name = (
            _ARTIST_FORMS[forms[i]]
            .format(N=base_names[i], S=surn[i], W=w1[i])
            .replace(f"{w1[i]} {w1[i]}", f"{w1[i]} {w2[i]}")
        )
        if name in seen:
            name = f"{name} feat. {base_names[i]}"
        if name in seen:
            name = f"{name} {i}"
        seen.add(name)
        artists.append(name)
    song_artist = rng.integers(0, n_artists, n_songs)
    ta = words[rng.integers(0, len(words), n_songs)]
    tb = words[rng.integers(0, len(words), n_songs)]
    shape = rng.integers(0, 4, n_songs)
    titles = []
    for i in range(n_songs):
        if shape[i] == 0:
            titles.append(f"{ta[i]} {tb[i].lower()}")
        elif shape[i] == 1:
            titles.append(f"The {ta[i]} Of {tb[i]}")
        elif shape[i] == 2:
            titles.append(f"{ta[i]} ({tb[i]} Mix)")
        else:
            titles.append(f"My {ta[i]} {tb[i].lower()} {i % 97}")
    lengths = np.round(np.exp(rng.normal(np.log(235.0), 0.35, n_songs)), 5)
    artist_names = [artists[a] for a in song_artist]
    return Catalogue(
        artist=pl.Series("artist", [*artist_names, None], dtype=pl.String),
        song=pl.Series("song", [*titles, None], dtype=pl.String),
        length=pl.Series("length", [*lengths.tolist(), None], dtype=pl.Float64),
        n_songs=n_songs,
    )
