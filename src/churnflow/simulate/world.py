"""The latent world: users, their daily satisfaction and churn hazard, churn times and sessions.

Everything here is per user or per session (small arrays, even for ``full``); events are expanded from
sessions later, chunk by chunk (``churnflow.simulate.events``). All randomness comes from one
``numpy.random.Generator`` passed in, so the same seed gives the same world.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from churnflow.simulate.presets import DAY_MS, Preset, WorldParams

KIND_NONE, KIND_CANCEL, KIND_SILENT = 0, 1, 2
KIND_NAMES: tuple[str | None, ...] = (None, "cancel", "silent")

#: conservative per-event durations (seconds) used to keep sessions of one user from overlapping
_SONG_SECONDS_UPPER = 330.0
_OTHER_SECONDS_UPPER = 40.0


@dataclass
class Users:
    """Per-user latent state. Arrays have length ``n``; ``sat``/``hazard`` are (n, hazard_days).

    Invariant: ``churn_kind[u] != KIND_NONE`` iff ``0 <= churn_time[u] < n_days`` (days from the start).
    """

    n: int
    engagement: np.ndarray
    paid0: np.ndarray  # bool: paid at the start (or at registration)
    reg_days: np.ndarray  # registration, in days from the start (negative: before the window)
    sat: np.ndarray
    hazard: np.ndarray
    churn_time: np.ndarray  # days from the start; nan when no churn inside the window
    churn_kind: np.ndarray  # int8 KIND_*
    first_session: np.ndarray  # days from the start of the first session


@dataclass
class Sessions:
    """One row per logged-in session, sorted by (user, start). ``final`` marks the cancelling session.

    Invariant: a user's sessions do not overlap under the conservative duration bound, and no session
    starts at or after the user's churn time except the final (cancel) session.
    """

    user: np.ndarray  # int64 user index
    start_days: np.ndarray  # float64 days from the start
    paid: np.ndarray  # bool: level at the session start
    n_songs: np.ndarray  # int64
    sat: np.ndarray  # satisfaction on the session's day
    upgrade: np.ndarray  # bool: ends with Upgrade -> Submit Upgrade
    downgrade: np.ndarray  # bool: ends with Downgrade -> Submit Downgrade
    final: np.ndarray  # bool: ends with Cancel -> Cancellation Confirmation


def simulate_users(rng: np.random.Generator, preset: Preset, p: WorldParams) -> Users:
    """Draw the latent state of ``preset.n_users`` users and their churn (time, kind).

    The user traits (engagement, satisfaction mean) and the churn thresholds are drawn by stratified
    sampling: each user's distribution is the stated one, while totals vary less between seeds.
    """
    n, days = preset.n_users, preset.hazard_days
    e = _stratified_normal(rng, n)
    paid0 = rng.random(n) < 1.0 / (1.0 + np.exp(-(p.paid_intercept + p.paid_eng * e)))
    new_in_window = rng.random(n) < p.new_in_window_share
    reg_days = np.where(
        new_in_window,
        rng.uniform(0.0, preset.n_days * 0.75, n),
        -rng.uniform(1.0, p.tenure_max_days, n),
    )
    mu = p.sat_mu_sd * _stratified_normal(rng, n) + p.sat_free_shift * (~paid0)
    sat = np.empty((n, days))
    stationary_sd = p.sat_sigma / np.sqrt(1.0 - p.sat_rho**2)
    s = mu + stationary_sd * rng.standard_normal(n)
    noise = rng.standard_normal((n, days))
    for d in range(days):
        s = mu + p.sat_rho * (s - mu) + p.sat_sigma * noise[:, d]
        sat[:, d] = s
    # the first session: at registration (new users) or somewhere in the first usual gap
    base_gap = np.clip(p.gap_days * np.exp(-p.gap_eng * e), p.gap_min_days, p.gap_max_days)
    gap0 = base_gap * np.exp(-p.gap_sat * sat[:, 0])
    first = np.where(reg_days >= 0, reg_days, rng.uniform(0.0, 1.0, n) * gap0)
    day = np.arange(days)[None, :]
    tenure = day - reg_days[:, None]
    logit = (
        p.hazard_intercept
        + preset.churn_boost
        - p.hazard_sat * sat
        - p.hazard_eng * e[:, None]
        + p.hazard_free * (~paid0)[:, None]
        + p.hazard_new_user * (tenure < p.new_user_days)
    )
    hazard = 1.0 / (1.0 + np.exp(-logit))
    # not a customer yet: no churn before the day after the first session (every user shows up once)
    hazard[day < np.floor(first)[:, None] + 2] = 0.0
    # Churn day: the first day whose cumulative hazard -sum log(1 - h) passes an Exp(1) threshold, which
    # is exactly the daily Bernoulli(h_d) process for each user. The thresholds come from stratified
    # uniforms (one per 1/n stratum, shuffled over users): each user's law is unchanged, while the number
    # of churners varies less from seed to seed than with independent draws.
    threshold = -np.log1p(-_stratified_uniform(rng, n))
    cum = np.cumsum(-np.log1p(-hazard), axis=1)
    passed = cum >= threshold[:, None]
    passed[:, preset.n_days :] = False
    any_churn = passed.any(axis=1)
    churn_day = np.where(any_churn, passed.argmax(axis=1), -1)
    frac = rng.random(n)
    churn_time = np.where(any_churn, churn_day + frac, np.nan)
    share = np.where(paid0, p.cancel_share_paid, p.cancel_share_free)
    cancels = _stratified_uniform(rng, n) < share
    kind = np.where(any_churn, np.where(cancels, KIND_CANCEL, KIND_SILENT), KIND_NONE)
    return Users(
        n=n,
        engagement=e,
        paid0=paid0,
        reg_days=reg_days,
        sat=sat,
        hazard=hazard,
        churn_time=churn_time,
        churn_kind=kind.astype(np.int8),
        first_session=first,
    )


def _stratified_uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` Uniform(0, 1) draws, one in each stratum [k/n, (k+1)/n), assigned to users at random."""
    return (rng.permutation(n) + rng.random(n)) / n


def _stratified_normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` standard-normal draws through stratified uniforms (same law per user, steadier totals)."""
    inv = NormalDist().inv_cdf
    u = np.clip(_stratified_uniform(rng, n), 1e-12, 1 - 1e-12)
    return np.fromiter((inv(x) for x in u), dtype=np.float64, count=n)


def _negbin(rng: np.random.Generator, mean: np.ndarray, dispersion: float) -> np.ndarray:
    """Negative-binomial counts with the given mean and shape ``dispersion`` (gamma-Poisson mixture)."""
    lam = rng.gamma(dispersion, mean / dispersion)
    return rng.poisson(lam)


def _duration_upper_days(n_songs: np.ndarray) -> np.ndarray:
    """A conservative bound on a session's length (days), from its song count."""
    return (n_songs * _SONG_SECONDS_UPPER + (n_songs * 0.3 + 12) * _OTHER_SECONDS_UPPER) / 86_400.0


def simulate_sessions(rng: np.random.Generator, preset: Preset, p: WorldParams, users: Users) -> Sessions:
    """Draw every user's sessions as a gamma renewal process driven by engagement and satisfaction.

    Sessions stop at the churn time (silent and cancelling churners) or at the end of the window; a
    cancelling churner gets one last short session that ends with Cancel -> Cancellation Confirmation.
    """
    n = users.n
    e = users.engagement
    stop = np.where(np.isnan(users.churn_time), float(preset.n_days), users.churn_time)
    base_gap = np.clip(p.gap_days * np.exp(-p.gap_eng * e), p.gap_min_days, p.gap_max_days)
    t = users.first_session.copy()
    paid = users.paid0.copy()
    last_end = np.full(n, -np.inf)
    parts: list[tuple[np.ndarray, ...]] = []
    while True:
        idx = np.flatnonzero(t < stop)
        if idx.size == 0:
            break
        day = np.minimum(t[idx].astype(np.int64), preset.hazard_days - 1)
        s = users.sat[idx, day]
        mean_songs = p.songs_per_session * np.exp(p.songs_eng * e[idx] + p.songs_sat * s)
        n_songs = np.maximum(_negbin(rng, mean_songs, p.songs_dispersion), 1)
        end = t[idx] + _duration_upper_days(n_songs)
        fits = end < stop[idx]  # a session that would run past the churn time or the window is not held
        lvl = paid[idx]
        up = (~lvl) & (rng.random(idx.size) < p.upgrade_per_session)
        down = lvl & (rng.random(idx.size) < p.downgrade_per_session * np.exp(p.downgrade_sat * s))
        keep = idx[fits]
        parts.append((keep, t[keep], lvl[fits], n_songs[fits], s[fits], up[fits], down[fits]))
        paid[keep] = np.where(up[fits], True, np.where(down[fits], False, paid[keep]))
        last_end[keep] = end[fits]
        gap = rng.gamma(p.gap_shape, base_gap[idx] * np.exp(-p.gap_sat * s) / p.gap_shape)
        t[idx] = np.where(fits, end + gap, np.inf)
    # the cancelling session: right at the churn time (after the previous session has ended)
    cancel = np.flatnonzero(users.churn_kind == KIND_CANCEL)
    t_c = np.maximum(users.churn_time[cancel], last_end[cancel] + 1.0 / 24.0)
    n_final = np.maximum(_negbin(rng, np.full(cancel.size, p.final_session_songs), p.songs_dispersion), 1)
    inside = t_c + _duration_upper_days(n_final) < preset.n_days
    # a cancellation that would fall after the window is not observed: that user simply stays
    users.churn_kind[cancel[~inside]] = KIND_NONE
    users.churn_time[cancel[~inside]] = np.nan
    users.churn_time[cancel[inside]] = t_c[inside]
    cancel, t_c, n_final = cancel[inside], t_c[inside], n_final[inside]
    day_c = np.minimum(t_c.astype(np.int64), preset.hazard_days - 1)
    cols = list(zip(*parts, strict=True)) if parts else [[] for _ in range(7)]
    user = np.concatenate([*cols[0], cancel]).astype(np.int64)
    start = np.concatenate([*cols[1], t_c])
    final = np.concatenate([np.zeros(user.size - cancel.size, bool), np.ones(cancel.size, bool)])
    sessions = Sessions(
        user=user,
        start_days=start,
        paid=np.concatenate([*cols[2], paid[cancel]]).astype(bool),
        n_songs=np.concatenate([*cols[3], n_final]).astype(np.int64),
        sat=np.concatenate([*cols[4], users.sat[cancel, day_c]]),
        upgrade=np.concatenate([*cols[5], np.zeros(cancel.size, bool)]).astype(bool),
        downgrade=np.concatenate([*cols[6], np.zeros(cancel.size, bool)]).astype(bool),
        final=final,
    )
    order = np.lexsort((sessions.start_days, sessions.user))
    return Sessions(**{k: v[order] for k, v in vars(sessions).items()})


def session_start_ms(preset: Preset, start_days: np.ndarray) -> np.ndarray:
    """Session start times in epoch ms, on whole seconds like Sparkify's ``ts``."""
    return preset.start_ms + np.round(start_days * 86_400.0).astype(np.int64) * 1000


def registration_ms(preset: Preset, reg_days: np.ndarray) -> np.ndarray:
    """Registration times in epoch ms (whole seconds)."""
    return preset.start_ms + np.round(reg_days * 86_400.0).astype(np.int64) * 1000


__all__ = [
    "DAY_MS",
    "KIND_CANCEL",
    "KIND_NAMES",
    "KIND_NONE",
    "KIND_SILENT",
    "Sessions",
    "Users",
    "registration_ms",
    "session_start_ms",
    "simulate_sessions",
    "simulate_users",
]
