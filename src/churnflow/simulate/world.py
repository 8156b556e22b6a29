"""The latent world and the engine that moves it: satisfaction, churn hazard, churn and session renewal.

The step functions here (``step_satisfaction``, ``daily_hazard``, ``first_passage_day``,
``session_gap_mean``, ``renew_sessions``, ``final_session_start``, ``draw_final_songs``, ``churn_kinds``)
are the engine: ``simulate_users``/``simulate_sessions`` use them to make the world, and the Monte-Carlo
oracle (``churnflow.simulate.oracle``) calls the very same functions to re-simulate a user's future from
the latent state at a cutoff. Every parameter is looked up per day through a ``Regime``, so scenario
changes from a change day apply in both.

Everything here is per user or per session (small arrays, even for ``full``); events are expanded from
sessions later, chunk by chunk (``churnflow.simulate.events``). All randomness comes from the
``numpy.random.Generator`` passed in, so the same seed gives the same world. Times are in days from the
preset's start (day 0 = its first UTC day), as float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from churnflow.simulate.presets import DAY_MS, Preset, Regime, WorldParams

KIND_NONE, KIND_CANCEL, KIND_SILENT = 0, 1, 2
KIND_NAMES: tuple[str | None, ...] = (None, "cancel", "silent")
#: what a session ends with (``Sessions.kind``)
SESSION_PLAIN, SESSION_UPGRADE, SESSION_DOWNGRADE, SESSION_FINAL = 0, 1, 2, 3

#: conservative per-event durations (seconds): a session occupies its user until this bound has passed
_SONG_SECONDS_UPPER = 330.0
_OTHER_SECONDS_UPPER = 40.0
#: a cancelling user's last session starts at least this long (days) after the previous one ended
FINAL_SESSION_PAUSE_DAYS = 1.0 / 24.0


@dataclass
class Users:
    """Per-user latent state. Arrays have length ``n``; ``sat``/``hazard`` are (n, hazard_days).

    ``decision_time``/``decision_kind``: when (days) and how the user decided to leave (nan/KIND_NONE: not
    inside the window). ``churn_time``/``churn_kind``: the churn as observed in the window — a cancellation
    whose confirmation would fall after the window is not observed (KIND_NONE); a silent churner's time is
    the moment they are gone (the decision, or the end of the session they were in). Invariant:
    ``churn_kind[u] != KIND_NONE`` iff ``0 <= churn_time[u] < n_days``.
    """

    n: int
    engagement: np.ndarray
    sat_trait: np.ndarray  # z: the satisfaction mean is sat_mu_sd z + sat_free_shift free
    paid0: np.ndarray  # bool: paid at sign-up (a trait: free = ~paid0 lowers the mean and raises the hazard)
    level0: np.ndarray  # bool: paid at the window's start (customers) or at registration (newcomers)
    reg_days: np.ndarray  # registration, in days from the start (negative: before the window)
    sat: np.ndarray
    hazard: np.ndarray
    decision_time: np.ndarray
    decision_kind: np.ndarray  # int8 KIND_*
    churn_time: np.ndarray
    churn_kind: np.ndarray  # int8 KIND_*
    first_session: np.ndarray  # days from the start of the first session


@dataclass
class Sessions:
    """One row per logged-in session, sorted by (user, start). ``final`` marks the cancelling session.

    ``end_days`` is the engine's end (``start + session_occupancy_days(n_songs)``, a bound above the last
    event); ``gap_mean`` the mean of the gamma gap drawn after it; ``paid``/``paid_after`` the level at its
    start and after it. Invariant: a user's sessions do not overlap (the next starts after ``end_days``),
    and no session starts at or after the user's decision to leave except the final (cancel) session.
    """

    user: np.ndarray  # int64 user index
    start_days: np.ndarray  # float64 days from the start
    end_days: np.ndarray
    paid: np.ndarray  # bool: level at the session start
    paid_after: np.ndarray
    n_songs: np.ndarray  # int64
    sat: np.ndarray  # satisfaction on the session's day
    upgrade: np.ndarray  # bool: ends with Upgrade -> Submit Upgrade
    downgrade: np.ndarray  # bool: ends with Downgrade -> Submit Downgrade
    final: np.ndarray  # bool: ends with Cancel -> Cancellation Confirmation
    gap_mean: np.ndarray  # float64 days (nan for final sessions)

    @property
    def kind(self) -> np.ndarray:
        """SESSION_* code per session."""
        out = np.where(self.upgrade, SESSION_UPGRADE, SESSION_PLAIN)
        out = np.where(self.downgrade, SESSION_DOWNGRADE, out)
        return np.where(self.final, SESSION_FINAL, out).astype(np.int8)


# ---------------------------------------------------------------------------------------------------------
# the engine's step functions (shared with the oracle)


def sat_mean(p: WorldParams, z: np.ndarray, free: np.ndarray) -> np.ndarray:
    """A user's satisfaction mean under parameters ``p``."""
    return p.sat_mu_sd * z + p.sat_free_shift * free


def stationary_sd(p: WorldParams) -> float:
    """Standard deviation of the AR(1) satisfaction around its mean."""
    return p.sat_sigma / float(np.sqrt(1.0 - p.sat_rho**2))


def step_satisfaction(
    regime: Regime, s_prev: np.ndarray, z: np.ndarray, free: np.ndarray, eps: np.ndarray, day0: np.ndarray
) -> np.ndarray:
    """Daily satisfaction for days ``day0 .. day0 + D - 1`` of each row, from the value the day before.

    ``s_d = mu_d + rho_d (s_{d-1} - mu_d) + sigma_d eps_d`` with the parameters of day d; ``eps`` is
    (D, m) standard normal (one row per day). Returns (m, D).
    """
    out = np.empty_like(eps)
    s = s_prev.astype(np.float64, copy=True)
    fixed = not regime.changes
    if fixed:
        p = regime.after
        mu = sat_mean(p, z, free)
    for j in range(eps.shape[0]):
        if fixed:
            rho, sigma = p.sat_rho, p.sat_sigma
        else:
            days = day0 + j
            mu = regime.value("sat_mu_sd", days) * z + regime.value("sat_free_shift", days) * free
            rho, sigma = regime.value("sat_rho", days), regime.value("sat_sigma", days)
        s = mu + rho * (s - mu) + sigma * eps[j]
        out[j] = s
    return out.T


def daily_hazard(
    regime: Regime,
    sat: np.ndarray,
    day0: np.ndarray,
    e: np.ndarray,
    free: np.ndarray,
    reg_days: np.ndarray,
    customer_from: np.ndarray,
    boost: float,
) -> np.ndarray:
    """Daily churn probability for days ``day0 + j`` (columns of ``sat``), (m, D).

    ``logit h = a - b_s s - b_e e + b_free free + b_new [tenure < new_user_days] + boost``; zero before
    the day after ``customer_from`` (``hazard_from``: a new user is not a customer before their first
    session, so every newcomer shows up at least once).
    """
    days = day0[:, None] + np.arange(sat.shape[1])[None, :]
    v = regime.value
    new_user = (days - reg_days[:, None]) < v("new_user_days", days)
    logit = v("hazard_sat", days) * sat
    np.subtract(v("hazard_intercept", days) + boost, logit, out=logit)
    logit -= (v("hazard_eng", days) * e[:, None]) - v("hazard_free", days) * free[:, None]
    logit += v("hazard_new_user", days) * new_user
    np.negative(logit, out=logit)
    np.exp(logit, out=logit)
    logit += 1.0
    hazard = np.reciprocal(logit, out=logit)
    hazard[days < np.floor(customer_from)[:, None] + 2] = 0.0
    return hazard


def hazard_from(reg_days: np.ndarray, first_session: np.ndarray) -> np.ndarray:
    """``customer_from`` of ``daily_hazard``: the first session of users registering inside the window;
    -inf for customers registered before it (they can leave before their first session in the window)."""
    return np.where(reg_days >= 0, first_session, -np.inf)


def first_passage_day(hazard: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Column of the first day whose cumulative hazard ``-sum log(1 - h)`` reaches ``threshold``, else -1.

    With ``threshold ~ Exp(1)`` this is exactly the daily Bernoulli(h_d) churn process; being memoryless,
    a user not churned by some day can be continued from there with a fresh Exp(1) threshold.
    """
    cum = np.cumsum(-np.log1p(-hazard), axis=1)
    passed = cum >= threshold[:, None]
    return np.where(passed.any(axis=1), passed.argmax(axis=1), -1)


def churn_kinds(regime: Regime, u: np.ndarray, day: np.ndarray, paid0: np.ndarray) -> np.ndarray:
    """KIND_CANCEL when ``u`` (uniform) falls below the cancel share of the user's level, else KIND_SILENT."""
    share = np.where(paid0, regime.value("cancel_share_paid", day), regime.value("cancel_share_free", day))
    return np.where(u < share, KIND_CANCEL, KIND_SILENT).astype(np.int8)


def session_occupancy_days(n_songs: np.ndarray) -> np.ndarray:
    """How long a session occupies its user (days): a conservative bound above its last event."""
    return (n_songs * _SONG_SECONDS_UPPER + (n_songs * 0.3 + 12) * _OTHER_SECONDS_UPPER) / 86_400.0


def session_gap_mean(regime: Regime, day: np.ndarray, e: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Mean gap (days) after a session on ``day``: clip(gap_days exp(-gap_eng e)) exp(-gap_sat s)."""
    v = regime.value
    base = np.clip(
        v("gap_days", day) * np.exp(-v("gap_eng", day) * e), v("gap_min_days", day), v("gap_max_days", day)
    )
    return base * np.exp(-v("gap_sat", day) * s)


def draw_gap(rng: np.random.Generator, shape: np.ndarray | float, mean: np.ndarray) -> np.ndarray:
    """Gamma gaps with the given shape and mean."""
    return rng.gamma(shape, mean / shape)


def draw_gap_beyond(
    rng: np.random.Generator, shape: np.ndarray | float, mean: np.ndarray, elapsed: np.ndarray
) -> np.ndarray:
    """Gamma(shape, mean/shape) gaps conditioned on exceeding ``elapsed`` (inverse upper-tail CDF).

    Where the tail probability underflows, the gamma tail's exponential limit is used.
    """
    from scipy.special import gammaincc, gammainccinv

    scale = mean / shape
    shape_a = np.broadcast_to(np.asarray(shape, dtype=np.float64), mean.shape)
    x0 = np.maximum(elapsed, 0.0) / scale
    tail = gammaincc(shape_a, x0)
    v = 1.0 - rng.random(mean.shape)  # (0, 1]
    ok = tail > 1e-280
    x = np.where(ok, gammainccinv(shape_a, np.where(ok, v * tail, 0.5)), x0 - np.log(v))
    return np.maximum(x, x0) * scale


def _negbin(rng: np.random.Generator, mean: np.ndarray, dispersion: np.ndarray | float) -> np.ndarray:
    """Negative-binomial counts with the given mean and shape ``dispersion`` (gamma-Poisson mixture)."""
    lam = rng.gamma(dispersion, mean / dispersion)
    return rng.poisson(lam)


@dataclass
class SessionDraws:
    """Sessions drawn by ``renew_sessions`` (unsorted, in draw order); ``row`` indexes its input arrays."""

    row: np.ndarray
    start: np.ndarray
    end: np.ndarray
    paid: np.ndarray
    paid_after: np.ndarray
    n_songs: np.ndarray
    sat: np.ndarray
    upgrade: np.ndarray
    downgrade: np.ndarray
    gap_mean: np.ndarray


def renew_sessions(
    rng: np.random.Generator,
    regime: Regime,
    e: np.ndarray,
    sat: np.ndarray,
    day0: np.ndarray,
    t_next: np.ndarray,
    stop: np.ndarray,
    paid: np.ndarray,
    last_end: np.ndarray,
) -> tuple[SessionDraws, np.ndarray, np.ndarray]:
    """The session renewal process of each row from its next session start until ``stop``.

    Row i's next session starts at ``t_next[i]`` (days); a session is held when it starts before
    ``stop[i]`` (the decision to leave, or the end of what is simulated) and then runs its course. Each
    session draws its songs (negative binomial in e and the day's satisfaction ``sat[i, day - day0[i]]``),
    an upgrade (free) or downgrade (paid), and the gamma gap to the next one, drawn when it ends.
    Returns the sessions, each row's last session end and its level after the last session.
    """
    t = t_next.astype(np.float64, copy=True)
    paid = paid.copy()
    last_end = last_end.astype(np.float64, copy=True)
    n_cols = sat.shape[1]
    parts: list[tuple[np.ndarray, ...]] = []
    while True:
        idx = np.flatnonzero(t < stop)
        if idx.size == 0:
            break
        start = t[idx]
        day = np.floor(start).astype(np.int64)
        s = sat[idx, np.clip(day - day0[idx], 0, n_cols - 1)]
        v = regime.value
        mean_songs = v("songs_per_session", day) * np.exp(
            v("songs_eng", day) * e[idx] + v("songs_sat", day) * s
        )
        n_songs = np.maximum(_negbin(rng, mean_songs, v("songs_dispersion", day)), 1)
        end = start + session_occupancy_days(n_songs)
        lvl = paid[idx]
        up = (~lvl) & (rng.random(idx.size) < v("upgrade_per_session", day))
        p_down = v("downgrade_per_session", day) * np.exp(v("downgrade_sat", day) * s)
        down = lvl & (rng.random(idx.size) < p_down)
        after = np.where(up, True, np.where(down, False, lvl))
        gap_mean = session_gap_mean(regime, day, e[idx], s)
        gap = draw_gap(rng, v("gap_shape", day), gap_mean)
        parts.append((idx, start, end, lvl, after, n_songs, s, up, down, gap_mean))
        paid[idx] = after
        last_end[idx] = end
        t[idx] = end + gap
    if parts:
        cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    else:
        cols = [
            np.zeros(0, dt) for dt in (np.int64, float, float, bool, bool, np.int64, float, bool, bool, float)
        ]
    draws = SessionDraws(*cols)
    return draws, last_end, paid


def final_session_start(decision: np.ndarray, last_end: np.ndarray) -> np.ndarray:
    """A cancelling user's last session: at the decision, or a pause after the session they were in."""
    return np.maximum(decision, last_end + FINAL_SESSION_PAUSE_DAYS)


def draw_final_songs(rng: np.random.Generator, regime: Regime, day: np.ndarray) -> np.ndarray:
    """Songs of a cancelling session (negative binomial, at least 1)."""
    mean = np.broadcast_to(np.asarray(regime.value("final_session_songs", day), dtype=np.float64), day.shape)
    return np.maximum(_negbin(rng, mean, regime.value("songs_dispersion", day)), 1)


# ---------------------------------------------------------------------------------------------------------
# the world


def _customers_at_start(
    rng: np.random.Generator, preset: Preset, regime: Regime, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` customers at the start of the window: survivors of a steady inflow over ``history_days``.

    Candidates register uniformly over the ``history_days`` before the window and live through the same
    satisfaction and hazard engine (parameters of the day before the window); those still customers at
    day 0 are kept, in draw order, until ``n`` are found. So the customer base starts in its steady state
    (survivors are the more engaged and satisfied, as in a long-running service) and stays there.
    Returns engagement, satisfaction trait, paid at sign-up, registration day, satisfaction on day -1 and
    the level at the start (``_level_after``).
    """
    p = regime.at(-1)
    history = p.history_days
    block = 128
    batch = max(2 * n, 1_000)
    found: list[tuple[np.ndarray, ...]] = []
    n_found = 0
    while n_found < n:
        e = _stratified_normal(rng, batch)
        z = _stratified_normal(rng, batch)
        paid0 = rng.random(batch) < 1.0 / (1.0 + np.exp(-(p.paid_intercept + p.paid_eng * e)))
        free = ~paid0
        reg = -history * _stratified_uniform(rng, batch)
        threshold = -np.log1p(-_stratified_uniform(rng, batch))
        s = sat_mean(p, z, free) + stationary_sd(p) * rng.standard_normal(batch)
        cum = np.zeros(batch)
        for d0 in range(-history, 0, block):
            width = min(block, -d0)
            day0 = np.full(batch, d0, dtype=np.int64)
            sat = step_satisfaction(regime, s, z, free, rng.standard_normal((width, batch)), day0)
            hazard = daily_hazard(regime, sat, day0, e, free, reg, reg, preset.churn_boost)
            hazard[(d0 + np.arange(width))[None, :] < np.floor(reg)[:, None]] = 0.0  # not registered yet
            cum += -np.log1p(-hazard).sum(axis=1)
            s = sat[:, -1]
        alive = np.flatnonzero(cum < threshold)[: n - n_found]
        level = _level_after(rng, p, e[alive], s[alive], paid0[alive], -reg[alive])
        found.append((e[alive], z[alive], paid0[alive], reg[alive], s[alive], level))
        n_found += alive.size
    cols = [np.concatenate(c) for c in zip(*found, strict=True)]
    return cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]


def _level_after(
    rng: np.random.Generator,
    p: WorldParams,
    e: np.ndarray,
    s: np.ndarray,
    paid0: np.ndarray,
    tenure: np.ndarray,
) -> np.ndarray:
    """Level at the window's start of customers who signed up ``tenure`` days before at level ``paid0``.

    The level is a two-state chain over sessions (upgrade with ``upgrade_per_session`` when free, downgrade
    with ``downgrade_per_session exp(downgrade_sat s)`` when paid); after k sessions P(paid) =
    pi + (paid0 - pi) (1 - u - d)^k with pi = u / (u + d), k = tenure / mean gap, at today's satisfaction.
    """
    up = p.upgrade_per_session
    down = p.downgrade_per_session * np.exp(p.downgrade_sat * s)
    pi = up / (up + down)
    gap = np.clip(p.gap_days * np.exp(-p.gap_eng * e), p.gap_min_days, p.gap_max_days) * np.exp(
        -p.gap_sat * s
    )
    k = tenure / gap
    prob = pi + (paid0 - pi) * (1.0 - up - down) ** k
    return _stratified_uniform(rng, e.size) < prob  # each user's law; steadier totals


def simulate_users(rng: np.random.Generator, preset: Preset, regime: Regime) -> Users:
    """Draw the latent state of ``preset.n_users`` users and their decision to leave (time, kind).

    The customers at the start are the survivors of a steady inflow before the window
    (``_customers_at_start``); the others register at the same steady rate inside the window
    (``registrations_per_day`` × customers at the start; registration times uniform over the window, as
    for a Poisson inflow). New users' traits, their registration times and the churn thresholds are drawn
    by stratified sampling: each user's law is the stated one, while totals vary less between seeds.
    Thresholds are drawn afresh at day 0 for everyone (the churn process is memoryless).
    """
    n, days = preset.n_users, preset.hazard_days
    p0 = regime.at(-1)
    n_start = round(n / (1.0 + p0.registrations_per_day * preset.n_days))
    n_new = n - n_start
    e0, z0, paid_start, reg0, s0, level_start = _customers_at_start(rng, preset, regime, n_start)
    e1 = _stratified_normal(rng, n_new)
    z1 = _stratified_normal(rng, n_new)
    paid1 = rng.random(n_new) < 1.0 / (1.0 + np.exp(-(p0.paid_intercept + p0.paid_eng * e1)))
    reg1 = _stratified_uniform(rng, n_new) * preset.n_days
    s1 = sat_mean(p0, z1, ~paid1) + stationary_sd(p0) * rng.standard_normal(n_new)
    # users in random order (ids and chunks do not sort customers before newcomers)
    order = rng.permutation(n)
    e = np.concatenate([e0, e1])[order]
    z = np.concatenate([z0, z1])[order]
    paid0 = np.concatenate([paid_start, paid1])[order]
    level0 = np.concatenate([level_start, paid1])[order]
    reg_days = np.concatenate([reg0, reg1])[order]
    s_init = np.concatenate([s0, s1])[order]
    free = ~paid0
    zeros = np.zeros(n, dtype=np.int64)
    sat = step_satisfaction(regime, s_init, z, free, rng.standard_normal((days, n)), zeros)
    # the first session: at registration (new users) or somewhere in the first usual gap
    gap0 = session_gap_mean(regime, zeros, e, sat[:, 0])
    first = np.where(reg_days >= 0, reg_days, rng.uniform(0.0, 1.0, n) * gap0)
    hazard = daily_hazard(
        regime, sat, zeros, e, free, reg_days, hazard_from(reg_days, first), preset.churn_boost
    )
    # thresholds from stratified uniforms (one per 1/n stratum, shuffled over users): each user's law is
    # unchanged, while the number of churners varies less from seed to seed than with independent draws
    threshold = -np.log1p(-_stratified_uniform(rng, n))
    churn_day = first_passage_day(hazard[:, : preset.n_days], threshold)
    decision = np.where(churn_day >= 0, churn_day + rng.random(n), np.nan)
    kind = churn_kinds(regime, _stratified_uniform(rng, n), np.maximum(churn_day, 0), paid0)
    kind = np.where(churn_day >= 0, kind, KIND_NONE).astype(np.int8)
    return Users(
        n=n,
        engagement=e,
        sat_trait=z,
        paid0=paid0,
        level0=level0,
        reg_days=reg_days,
        sat=sat,
        hazard=hazard,
        decision_time=decision,
        decision_kind=kind,
        churn_time=decision.copy(),
        churn_kind=kind.copy(),
        first_session=first,
    )


def _stratified_uniform(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` Uniform(0, 1) draws, one in each stratum [k/n, (k+1)/n), assigned to users at random."""
    return (rng.permutation(n) + rng.random(n)) / max(n, 1)


def _stratified_normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` standard-normal draws through stratified uniforms (same law per user, steadier totals)."""
    inv = NormalDist().inv_cdf
    u = np.clip(_stratified_uniform(rng, n), 1e-12, 1 - 1e-12)
    return np.fromiter((inv(x) for x in u), dtype=np.float64, count=n)


def simulate_sessions(rng: np.random.Generator, preset: Preset, regime: Regime, users: Users) -> Sessions:
    """Draw every user's sessions with ``renew_sessions`` until the decision to leave or the window's end.

    Sessions start before the user's decision (a session in progress then runs its course) and before the
    end of the window. A cancelling churner gets one last short session that ends with Cancel ->
    Cancellation Confirmation (``final_session_start``); when it would start after the window, the
    cancellation is not observed (``churn_kind`` KIND_NONE). Updates the observed churn of ``users``.
    """
    n = users.n
    decision = users.decision_time
    stop = np.where(np.isnan(decision), float(preset.n_days), np.minimum(decision, preset.n_days))
    zeros = np.zeros(n, dtype=np.int64)
    draws, last_end, paid = renew_sessions(
        rng, regime, users.engagement, users.sat, zeros, users.first_session, stop, users.level0,
        np.full(n, -np.inf),
    )  # fmt: skip
    cancel = np.flatnonzero(users.decision_kind == KIND_CANCEL)
    t_c = final_session_start(decision[cancel], last_end[cancel])
    day_c = np.floor(t_c).astype(np.int64)
    n_final = draw_final_songs(rng, regime, day_c)
    inside = t_c < preset.n_days
    # a cancellation whose last session would start after the window is not observed
    users.churn_kind[cancel[~inside]] = KIND_NONE
    users.churn_time[cancel[~inside]] = np.nan
    users.churn_time[cancel[inside]] = t_c[inside]
    silent = np.flatnonzero(users.decision_kind == KIND_SILENT)
    users.churn_time[silent] = np.maximum(decision[silent], last_end[silent])
    cancel, t_c, n_final, day_c = cancel[inside], t_c[inside], n_final[inside], day_c[inside]
    sat_c = users.sat[cancel, np.minimum(day_c, preset.hazard_days - 1)]
    k = cancel.size
    no = np.zeros(k, dtype=bool)
    sessions = Sessions(
        user=np.concatenate([draws.row, cancel]).astype(np.int64),
        start_days=np.concatenate([draws.start, t_c]),
        end_days=np.concatenate([draws.end, t_c + session_occupancy_days(n_final)]),
        paid=np.concatenate([draws.paid, paid[cancel]]),
        paid_after=np.concatenate([draws.paid_after, paid[cancel]]),
        n_songs=np.concatenate([draws.n_songs, n_final]).astype(np.int64),
        sat=np.concatenate([draws.sat, sat_c]),
        upgrade=np.concatenate([draws.upgrade, no]),
        downgrade=np.concatenate([draws.downgrade, no]),
        final=np.concatenate([np.zeros(draws.row.size, dtype=bool), np.ones(k, dtype=bool)]),
        gap_mean=np.concatenate([draws.gap_mean, np.full(k, np.nan)]),
    )
    order = np.lexsort((sessions.start_days, sessions.user))
    return Sessions(**{f: v[order] for f, v in vars(sessions).items()})


def days_to_ms(preset: Preset, days: np.ndarray) -> np.ndarray:
    """Times in days from the start → epoch ms on whole seconds (like Sparkify's ``ts``)."""
    return preset.start_ms + np.round(days * 86_400.0).astype(np.int64) * 1000


def session_start_ms(preset: Preset, start_days: np.ndarray) -> np.ndarray:
    """Session start times in epoch ms, on whole seconds like Sparkify's ``ts``."""
    return days_to_ms(preset, start_days)


def registration_ms(preset: Preset, reg_days: np.ndarray) -> np.ndarray:
    """Registration times in epoch ms (whole seconds)."""
    return days_to_ms(preset, reg_days)


__all__ = [
    "DAY_MS",
    "KIND_CANCEL",
    "KIND_NAMES",
    "KIND_NONE",
    "KIND_SILENT",
    "SESSION_DOWNGRADE",
    "SESSION_FINAL",
    "SESSION_PLAIN",
    "SESSION_UPGRADE",
    "SessionDraws",
    "Sessions",
    "Users",
    "churn_kinds",
    "daily_hazard",
    "days_to_ms",
    "draw_final_songs",
    "draw_gap",
    "draw_gap_beyond",
    "final_session_start",
    "first_passage_day",
    "hazard_from",
    "registration_ms",
    "renew_sessions",
    "session_gap_mean",
    "session_occupancy_days",
    "session_start_ms",
    "simulate_sessions",
    "simulate_users",
    "step_satisfaction",
]
