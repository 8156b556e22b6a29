"""Expand sessions into Sparkify events (vectorised, one chunk of users at a time).

Output frames have exactly the 18 raw keys in ``RAW_KEYS`` order and Sparkify's JSON types, so
``DataFrame.write_ndjson`` writes lines a Sparkify loader accepts. Within a chunk, rows are ordered by
(user, session, itemInSession), which is also (user, ts) order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from churnflow.data.schema import PAGES, RAW_KEYS
from churnflow.simulate.presets import Preset, Regime, WorldParams
from churnflow.simulate.vocab import Catalogue
from churnflow.simulate.world import Sessions, session_start_ms

PAGE_NAMES: tuple[str, ...] = tuple(PAGES)
PAGE_CODE: dict[str, int] = {name: i for i, name in enumerate(PAGE_NAMES)}
_METHOD = np.array([PAGES[p][0] for p in PAGE_NAMES])
_STATUS = np.array([PAGES[p][1] for p in PAGE_NAMES], dtype=np.int64)
AUTH_LOGGED_IN, AUTH_LOGGED_OUT, AUTH_GUEST, AUTH_CANCELLED = 0, 1, 2, 3
_AUTH = pl.Series("auth", ["Logged In", "Logged Out", "Guest", "Cancelled"])
_LEVEL = pl.Series("level", ["free", "paid"])
_PAGE = pl.Series("page", list(PAGE_NAMES))
_METHOD_S = pl.Series("method", _METHOD.tolist())

#: pages placed at random positions inside a session, in the column order of the count matrix
_RANDOM_PAGES: tuple[str, ...] = (
    "NextSong", "Thumbs Up", "Thumbs Down", "Home", "Add to Playlist", "Add Friend", "Roll Advert",
    "Logout", "Downgrade", "Settings", "Help", "Upgrade", "About", "Save Settings", "Error",
)  # fmt: skip
LOGOUT_COLUMN: int = _RANDOM_PAGES.index("Logout")
_ANON_EXTRA = np.array([PAGE_CODE[p] for p in ("About", "Help", "Home", "Error")])
_ANON_EXTRA_P = np.array([0.45, 0.3, 0.2, 0.05])


@dataclass(frozen=True)
class ActivityTimes:
    """Per-session and per-(user, UTC day) times of a chunk's logged-in events (for the ground truth).

    ``session_last_ms[i]``: the last logged-in event of session i (its first is at its start);
    ``day_user``/``day``/``day_last_ms``: the last logged-in event of each (user, day) with activity.
    """

    session_last_ms: np.ndarray
    day_user: np.ndarray
    day: np.ndarray
    day_last_ms: np.ndarray


@dataclass(frozen=True)
class UserAttributes:
    """Per-user strings and registration, plus one last row (index n) for anonymous events.

    That last row is null everywhere except ``user_id``, where it is the empty string.
    """

    user_id: pl.Series
    first_name: pl.Series
    last_name: pl.Series
    gender: pl.Series
    location: pl.Series
    user_agent: pl.Series
    registration: pl.Series


#: (rate per song, satisfaction coefficient, level it applies to) of each column of ``_RANDOM_PAGES``
_PAGE_LAW: tuple[tuple[str | None, str | None, str | None], ...] = (
    (None, None, None),  # NextSong: counted, not drawn
    ("thumbs_up", "sat_coef_up", None),
    ("thumbs_down", "sat_coef_down", None),
    ("home", None, None),
    ("playlist", "sat_coef_social", None),
    ("friend", "sat_coef_social", None),
    ("ads", None, None),  # ads_free / ads_paid
    (None, None, None),  # Logout: logouts_per_session - 1 per session
    ("downgrade_page_paid", "sat_coef_downgrade", "paid"),
    ("settings", "sat_coef_trouble", None),
    ("help", "sat_coef_trouble", None),
    ("upgrade_page_free", None, "free"),
    ("about", None, None),
    ("save_settings", "sat_coef_trouble", None),
    ("error", "sat_coef_trouble", None),
)


def _law_vectors(p: WorldParams) -> tuple[np.ndarray, np.ndarray, float]:
    """(2, k) per-song rates for [free, paid], (k,) satisfaction coefficients, extra logouts per session."""
    k = len(_PAGE_LAW)
    base = np.zeros((2, k))
    coef = np.zeros(k)
    for col, (rate, sat_coef, level) in enumerate(_PAGE_LAW):
        if rate == "ads":
            base[:, col] = (p.ads_free, p.ads_paid)
        elif rate is not None:
            value = getattr(p, rate)
            base[0, col] = value if level in (None, "free") else 0.0
            base[1, col] = value if level in (None, "paid") else 0.0
        if sat_coef is not None:
            coef[col] = getattr(p, sat_coef)
    return base, coef, p.logouts_per_session - 1.0


def page_rates(
    regime: Regime, n_songs: np.ndarray, sat: np.ndarray, paid: np.ndarray, day: np.ndarray
) -> np.ndarray:
    """(n_sessions, len(_RANDOM_PAGES)) Poisson means of the random pages of sessions with ``n_songs`` songs.

    Per-song rates (by level) times ``exp(coef s)`` of the day's satisfaction, with the parameters of each
    session's ``day``; the NextSong column is 0 (songs are counted, not drawn) and the Logout column holds
    the extra logouts beyond the one every session has. Shared by the event expansion and the oracle.
    """
    level = paid.astype(np.int64)
    base_a, coef_a, logout_a = _law_vectors(regime.after)
    if regime.changes:
        base_b, coef_b, logout_b = _law_vectors(regime.before)
        after = (np.asarray(day) >= regime.change_day)[:, None]
        base = np.where(after, base_a[level], base_b[level])
        coef = np.where(after, coef_a[None, :], coef_b[None, :])
        logout = np.where(after[:, 0], logout_a, logout_b)
    else:
        base, coef, logout = base_a[level], coef_a[None, :], logout_a
    lam = np.exp(sat[:, None] * coef)
    lam *= base
    lam *= n_songs.astype(np.float64)[:, None]
    lam[:, LOGOUT_COLUMN] = logout
    return lam


def page_counts(rng: np.random.Generator, regime: Regime, s: Sessions) -> np.ndarray:
    """(n_sessions, len(_RANDOM_PAGES)) counts: Poisson around ``page_rates``, songs and one Logout added."""
    day = np.floor(s.start_days).astype(np.int64)
    counts = rng.poisson(page_rates(regime, s.n_songs, s.sat, s.paid, day))
    counts[:, 0] = s.n_songs
    counts[:, LOGOUT_COLUMN] += 1  # every session is left by a Logout at some point
    return counts


def expand_sessions(
    rng: np.random.Generator,
    preset: Preset,
    regime: Regime,
    s: Sessions,
    session_ids: np.ndarray,
    attrs: UserAttributes,
    catalogue: Catalogue,
) -> tuple[pl.DataFrame, ActivityTimes]:
    """Events of the sessions ``s`` (user indices refer to ``attrs``) as a raw-key frame, and their times.

    Invariants: Cancel/Cancellation Confirmation close a ``final`` session; Submit Upgrade/Downgrade
    follow an Upgrade/Downgrade visit at a session's end; every Logout is followed by Logged Out events
    (empty userId) of the same session; ts increase within a session by each event's duration.
    """
    n_sess = s.user.size
    counts = page_counts(rng, regime, s)
    random_codes = np.array([PAGE_CODE[x] for x in _RANDOM_PAGES])
    per_sess = counts.sum(axis=1)
    ev_sess = np.repeat(np.arange(n_sess), per_sess)
    ev_page = np.repeat(np.tile(random_codes, n_sess), counts.ravel())
    ev_key = rng.random(ev_sess.size)
    # pages that close a session, in this order: (sessions, page, sort key above every random key)
    specials = [
        (s.upgrade, "Upgrade", 1.4),
        (s.upgrade, "Submit Upgrade", 1.5),
        (s.downgrade, "Downgrade", 1.4),
        (s.downgrade, "Submit Downgrade", 1.5),
        (s.final, "Cancel", 2.0),
        (s.final, "Cancellation Confirmation", 2.1),
    ]
    sp_sess = [np.flatnonzero(m) for m, _, _ in specials]
    ev_sess = np.concatenate([ev_sess, *sp_sess])
    ev_page = np.concatenate(
        [
            ev_page,
            *[np.full(x.size, PAGE_CODE[name]) for x, (_, name, _) in zip(sp_sess, specials, strict=True)],
        ]
    )
    ev_key = np.concatenate(
        [ev_key, *[np.full(x.size, key) for x, (_, _, key) in zip(sp_sess, specials, strict=True)]]
    )
    # half of the Home visits move to the front of the session (sessions usually open on Home)
    home = ev_page == PAGE_CODE["Home"]
    ev_key = np.where(home & (rng.random(ev_key.size) < 0.5), ev_key * 0.05, ev_key)
    order = np.lexsort((ev_key, ev_sess))
    ev_sess, ev_page = ev_sess[order], ev_page[order]
    # each Logout opens a block of Logged Out events: Home, extras..., Login
    is_logout = ev_page == PAGE_CODE["Logout"]
    sess_day = np.floor(s.start_days).astype(np.int64)
    anon_rate = np.broadcast_to(
        np.asarray(regime.value("anon_extra_per_logout", sess_day[ev_sess]), dtype=np.float64), ev_sess.shape
    )
    n_anon = np.where(is_logout, 2 + rng.poisson(anon_rate), 0)
    block = 1 + n_anon
    src = np.repeat(np.arange(ev_page.size), block)
    starts = np.cumsum(block) - block
    sub = np.arange(src.size) - np.repeat(starts, block)
    last_in_block = sub == np.repeat(block - 1, block)
    page = ev_page[src]
    anon = sub > 0
    extra = _ANON_EXTRA[rng.choice(_ANON_EXTRA.size, src.size, p=_ANON_EXTRA_P)]
    page = np.where(anon, np.where(sub == 1, PAGE_CODE["Home"], extra), page)
    page = np.where(anon & last_in_block, PAGE_CODE["Login"], page)
    sess = ev_sess[src]
    auth = np.where(anon, 1, 0)
    auth = np.where(page == PAGE_CODE["Cancellation Confirmation"], AUTH_CANCELLED, auth)
    n_ev = page.size
    # positions inside the session
    sess_start_idx = np.searchsorted(sess, np.arange(n_sess))
    item = np.arange(n_ev) - sess_start_idx[sess]
    # songs
    is_song = page == PAGE_CODE["NextSong"]
    u = rng.random(n_ev)
    song_idx = np.minimum(
        (catalogue.n_songs * u**regime.after.song_popularity_exponent).astype(np.int64), catalogue.n_songs - 1
    )
    song_idx = np.where(is_song, song_idx, catalogue.n_songs)
    length = catalogue.length.gather(song_idx)
    length_np = length.fill_null(0.0).to_numpy()
    dur = np.where(is_song, np.round(length_np), rng.integers(3, 41, n_ev)).astype(np.int64)
    csum = np.cumsum(dur)
    excl = csum - dur
    offset = excl - excl[sess_start_idx][sess]
    ts = session_start_ms(preset, s.start_days)[sess] + offset * 1000
    n_users_attr = attrs.user_id.len() - 1  # the last row of every attribute is the anonymous one
    user_idx = np.where(anon, n_users_attr, s.user[sess])
    frame = pl.DataFrame(
        {
            "artist": catalogue.artist.gather(song_idx),
            "auth": _AUTH.gather(auth),
            "firstName": attrs.first_name.gather(user_idx),
            "gender": attrs.gender.gather(user_idx),
            "itemInSession": item.astype(np.int64),
            "lastName": attrs.last_name.gather(user_idx),
            "length": length,
            "level": _LEVEL.gather(s.paid[sess].astype(np.int64)),
            "location": attrs.location.gather(user_idx),
            "method": _METHOD_S.gather(page),
            "page": _PAGE.gather(page),
            "registration": attrs.registration.gather(user_idx),
            "sessionId": session_ids[sess].astype(np.int64),
            "song": catalogue.song.gather(song_idx),
            "status": _STATUS[page],
            "ts": ts,
            "userAgent": attrs.user_agent.gather(user_idx),
            "userId": attrs.user_id.gather(user_idx),
        }
    )
    # logged-in events: last per session, last per (user, day) (rows are in (user, ts) order)
    logged = np.flatnonzero(~anon)
    lsess, lts = sess[logged], ts[logged]
    session_last = np.full(n_sess, -1, dtype=np.int64)
    last_of_session = np.ones(lts.size, dtype=bool)
    last_of_session[:-1] = lsess[1:] != lsess[:-1]
    session_last[lsess[last_of_session]] = lts[last_of_session]
    luser = s.user[lsess]
    lday = (lts - preset.start_ms) // 86_400_000
    run_end = np.ones(lts.size, dtype=bool)
    run_end[:-1] = (luser[1:] != luser[:-1]) | (lday[1:] != lday[:-1])
    times = ActivityTimes(session_last, luser[run_end], lday[run_end], lts[run_end])
    return frame.select(RAW_KEYS), times


def guest_events(
    rng: np.random.Generator, preset: Preset, start_days: np.ndarray, session_ids: np.ndarray
) -> pl.DataFrame:
    """Guests (auth Guest, empty userId): Home, Register, Help/About, Submit Registration."""
    pattern = [PAGE_CODE[p] for p in ("Home", "Register", "Help", "About", "Submit Registration")]
    n_sessions = start_days.size
    n_per = rng.integers(2, len(pattern) + 1, n_sessions)
    sess = np.repeat(np.arange(n_sessions), n_per)
    starts = np.cumsum(n_per) - n_per
    item = np.arange(sess.size) - starts[sess]
    page = np.array(pattern)[item]
    start_ms = session_start_ms(preset, start_days)
    dur = rng.integers(5, 60, sess.size)
    excl = np.cumsum(dur) - dur
    ts = start_ms[sess] + (excl - excl[starts][sess]) * 1000
    null_s = pl.Series([None] * sess.size, dtype=pl.String)
    frame = pl.DataFrame(
        {
            "artist": null_s,
            "auth": pl.Series(["Guest"] * sess.size),
            "firstName": null_s,
            "gender": null_s,
            "itemInSession": item.astype(np.int64),
            "lastName": null_s,
            "length": pl.Series([None] * sess.size, dtype=pl.Float64),
            "level": pl.Series(["free"] * sess.size),
            "location": null_s,
            "method": _METHOD_S.gather(page),
            "page": _PAGE.gather(page),
            "registration": pl.Series([None] * sess.size, dtype=pl.Int64),
            "sessionId": session_ids[sess].astype(np.int64),
            "song": null_s,
            "status": _STATUS[page],
            "ts": ts.astype(np.int64),
            "userAgent": null_s,
            "userId": pl.Series([""] * sess.size),
        }
    )
    return frame.select(RAW_KEYS)
