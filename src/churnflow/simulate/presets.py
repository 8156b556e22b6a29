"""Simulator presets (size of the world), scenarios (behaviour of the world) and the regime in force per day.

A preset fixes how many users are simulated over how many days; a scenario fixes the behaviour and churn
parameters of the latent model (``WorldParams``); a ``Regime`` says which parameters hold on which day (a
scenario's changes apply from its change day, or to the whole world). All are frozen dataclasses, so a
(preset, scenario, change day, seed) tuple fully determines the output bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Final

import numpy as np

#: 2018-10-01 00:00:00 UTC in epoch ms, the first day of the published mini file.
SPARKIFY_START_MS: Final[int] = int(datetime(2018, 10, 1, tzinfo=UTC).timestamp() * 1000)
DAY_MS: Final[int] = 86_400_000


@dataclass(frozen=True)
class Preset:
    """Size of a simulated world.

    ``n_users`` distinct users appear over ``n_days`` days from ``start_ms``: customers registered before
    the window plus a steady inflow of registrations inside it (``WorldParams.registrations_per_day``).
    Users are generated and written in chunks of ``chunk_users`` (part of the preset so the bytes never
    depend on the machine). ``hazard_days`` is how many days of daily satisfaction and hazard the ground
    truth keeps: at least ``n_days`` + the longest label window (horizon 14 + inactivity 21) + a margin.
    """

    name: str
    n_users: int
    n_days: int = 63
    start_ms: int = SPARKIFY_START_MS
    chunk_users: int = 1_000
    hazard_days: int = 120
    churn_boost: float = 0.0  # added to the hazard logit (tiny: make sure a few dozen users still churn)

    def __post_init__(self) -> None:
        if self.n_users < 1 or self.n_days < 1 or self.chunk_users < 1:
            raise ValueError(f"preset {self.name!r}: n_users, n_days and chunk_users must be >= 1")
        if self.hazard_days < self.n_days:
            raise ValueError(f"preset {self.name!r}: hazard_days {self.hazard_days} < n_days {self.n_days}")


PRESETS: Final[dict[str, Preset]] = {
    "tiny": Preset(name="tiny", n_users=60, churn_boost=0.5),
    "mini": Preset(name="mini", n_users=225),
    "medium": Preset(name="medium", n_users=448),
    # the 12 GB export's size (~26M events, ~11.9 GB of JSON) over the default world's 140 days, so the
    # purged splits hold (the old 63-day `full` could not): ~2.7x `standard`'s users
    "full": Preset(name="full", n_users=13_000, n_days=140, hazard_days=200, chunk_users=500),
    # the default world: ~2,300 customers at any time over 140 days (training cutoffs, a purged validation
    # block and 6 purged test cutoffs with a 35-day label window; a known-customer AUC interval of ~±0.03)
    "standard": Preset(name="standard", n_users=4_800, n_days=140, hazard_days=200, chunk_users=250),
    # the default world's length at a quarter of its users: model behaviour tests in CI
    "small": Preset(name="small", n_users=1_200, n_days=140, hazard_days=200, chunk_users=250),
    # the scaling family (benchmarks/bench_scale.py): `small` x 2 and x 8 (x 4 is `standard`), same days
    "small_x2": Preset(name="small_x2", n_users=2_400, n_days=140, hazard_days=200, chunk_users=250),
    "small_x8": Preset(name="small_x8", n_users=9_600, n_days=140, hazard_days=200, chunk_users=250),
}


@dataclass(frozen=True)
class WorldParams:
    """Parameters of the latent churn story (see docs/simulator.md for the story they tell).

    Latent state per user: a static engagement trait ``e ~ N(0, 1)``, a satisfaction trait ``z ~ N(0, 1)``
    and a daily satisfaction AR(1) process ``s`` around the user mean ``sat_mu_sd z + sat_free_shift free``.
    Behaviour rates and the daily churn hazard are log-linear / logistic in (s, e, level, tenure); observed
    counts are Poisson/negative-binomial draws around those rates.
    """

    # satisfaction process: s_t = mu + rho (s_{t-1} - mu) + sigma eps_t, mu = mu_sd z + free_shift free
    sat_rho: float = 0.95
    sat_sigma: float = 0.32
    sat_mu_sd: float = 0.55
    sat_free_shift: float = -0.25
    # hazard: logit h = a + b_s (-s) + b_e (-e) + b_free free + b_new new + boost
    hazard_intercept: float = -5.78
    hazard_sat: float = 1.45
    hazard_eng: float = 0.30
    hazard_free: float = 0.30
    hazard_new_user: float = 0.45
    new_user_days: int = 30
    cancel_share_paid: float = 0.82  # share of churners who cancel explicitly (others go silent)
    cancel_share_free: float = 0.68
    # sessions: gamma renewal gaps (shape) with mean gap_days exp(-gap_eng e - gap_sat s)
    gap_days: float = 5.25
    gap_shape: float = 4.0
    gap_eng: float = 0.35
    gap_sat: float = 0.30
    gap_min_days: float = 1.0
    gap_max_days: float = 14.0
    # songs per session: negative binomial, mean songs exp(songs_eng e + songs_sat s), dispersion
    songs_per_session: float = 67.0
    songs_eng: float = 0.38
    songs_sat: float = 0.15
    songs_dispersion: float = 1.3
    final_session_songs: float = 15.0
    # other pages per song (rate x exp(sat_coef s)); ads and upgrade/downgrade depend on level
    thumbs_up: float = 0.0416
    thumbs_down: float = 0.0138
    home: float = 0.0441
    playlist: float = 0.0241
    friend: float = 0.0158
    settings: float = 0.0081
    save_settings: float = 0.0017
    help: float = 0.00785
    about: float = 0.0022
    error: float = 0.00135
    ads_free: float = 0.090
    ads_paid: float = 0.00135
    upgrade_page_free: float = 0.0099
    downgrade_page_paid: float = 0.0139
    logouts_per_session: float = 1.4
    anon_extra_per_logout: float = 0.56  # Logged Out events per logout beyond the Home + Login pair
    sat_coef_up: float = 0.30
    sat_coef_down: float = -0.60
    sat_coef_social: float = 0.20
    sat_coef_trouble: float = -0.45  # help, error, settings
    sat_coef_downgrade: float = -0.55
    # level: initial paid probability logistic in e; per-session switch probabilities
    paid_intercept: float = -0.95
    paid_eng: float = 0.8
    upgrade_per_session: float = 0.19
    downgrade_per_session: float = 0.040
    downgrade_sat: float = -0.6
    # registration: new customers register at a steady rate per day (a share of the customers at the
    # start); the customers at the start are the survivors of the same inflow over history_days, so the
    # customer base starts in its steady state and neither dies out nor grows over a long window
    history_days: int = 1_095
    registrations_per_day: float = 0.0075
    guest_sessions_per_user: float = 0.085
    # song catalogue
    n_artists: int = 20_000
    n_songs: int = 80_000
    song_popularity_exponent: float = 2.4


_BASE = WorldParams()

#: Scenario worlds. Each entry is the parameter set in force once the scenario's change applies (from its
#: change day, or everywhere); before the change day every scenario runs ``baseline``.
SCENARIOS: Final[dict[str, WorldParams]] = {
    "baseline": _BASE,
    # adverts double for free users (pure covariate shift: satisfaction and churn do not react)
    "more_ads": replace(_BASE, ads_free=2 * _BASE.ads_free),
    # a new app version: five times the errors, more help/settings visits, sessions a third shorter
    "app_errors": replace(
        _BASE,
        error=5 * _BASE.error,
        help=1.5 * _BASE.help,
        settings=1.3 * _BASE.settings,
        songs_per_session=0.65 * _BASE.songs_per_session,
        final_session_songs=0.65 * _BASE.final_session_songs,
    ),
    # concept drift: the churn hazard doubles (logit +0.7) while behaviour stays as it was until users leave
    "price_rise": replace(_BASE, hazard_intercept=_BASE.hazard_intercept + 0.7),
    # a changed behaviour mix: more ads and errors, shorter sessions, fewer thumbs up, unhappier free users
    "drifted": replace(
        _BASE,
        ads_free=0.12,
        error=0.0030,
        songs_per_session=48.0,
        thumbs_up=0.035,
        thumbs_down=0.016,
        sat_free_shift=-0.45,
    ),
}

#: old names that still work
SCENARIO_ALIASES: Final[dict[str, str]] = {"default": "baseline"}


@dataclass(frozen=True)
class Regime:
    """Which parameters hold on which day: ``before`` on days < ``change_day``, ``after`` from it on.

    ``change_day <= 0`` means the whole world runs ``after``, including the state drawn before the first
    day (satisfaction at the start). Days are whole days from the preset's start (0 = first day).
    """

    before: WorldParams
    after: WorldParams
    change_day: int = 0

    @property
    def changes(self) -> bool:
        """True when some day runs ``before`` and another ``after`` with different values."""
        return self.change_day > 0 and self.before != self.after

    def at(self, day: int) -> WorldParams:
        """The parameters in force on ``day`` (-1: the state before the first day)."""
        return self.after if (self.change_day <= 0 or day >= self.change_day) else self.before

    def value(self, name: str, days: np.ndarray) -> np.ndarray | float:
        """Parameter ``name`` on each of ``days`` (a scalar when it is the same on every day)."""
        a, b = getattr(self.before, name), getattr(self.after, name)
        if self.change_day <= 0 or a == b:
            return b
        return np.where(np.asarray(days) >= self.change_day, b, a)

    def changed_fields(self) -> list[str]:
        """Names of the parameters that differ between ``before`` and ``after``."""
        return [
            f.name for f in fields(WorldParams) if getattr(self.before, f.name) != getattr(self.after, f.name)
        ]


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``; raise ValueError naming the known presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown simulator preset {name!r}; known presets: {sorted(PRESETS)}")
    return PRESETS[name]


def scenario_name(name: str) -> str:
    """The canonical scenario name (``default`` → ``baseline``); ValueError naming the known ones."""
    canonical = SCENARIO_ALIASES.get(name, name)
    if canonical not in SCENARIOS:
        known = sorted([*SCENARIOS, *SCENARIO_ALIASES])
        raise ValueError(f"unknown simulator scenario {name!r}; known scenarios: {known}")
    return canonical


def get_scenario(name: str) -> WorldParams:
    """Return the parameters of scenario ``name`` (aliases allowed); ValueError naming the known ones."""
    return SCENARIOS[scenario_name(name)]


def get_regime(name: str, change_day: int = 0) -> Regime:
    """The regime of scenario ``name``: baseline before ``change_day``, the scenario from it (0: always)."""
    if change_day < 0:
        raise ValueError(f"change_day must be >= 0 (0 = the whole world), got {change_day}")
    return Regime(before=_BASE, after=get_scenario(name), change_day=change_day)
