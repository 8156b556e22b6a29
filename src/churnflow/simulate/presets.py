"""Simulator presets (size of the world) and scenarios (behaviour of the world).

A preset fixes how many users are simulated over how many days; a scenario fixes the behaviour and churn
parameters of the latent model (``WorldParams``). Both are frozen dataclasses so a (preset, scenario, seed)
triple fully determines the output bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

#: 2018-10-01 00:00:00 UTC in epoch ms, the first day of the published mini file.
SPARKIFY_START_MS: Final[int] = int(datetime(2018, 10, 1, tzinfo=UTC).timestamp() * 1000)
DAY_MS: Final[int] = 86_400_000


@dataclass(frozen=True)
class Preset:
    """Size of a simulated world.

    ``n_users`` real users are simulated over ``n_days`` days from ``start_ms``; users are generated and
    written in chunks of ``chunk_users`` (part of the preset so the bytes never depend on the machine).
    ``hazard_days`` is how many days of daily hazard the ground truth keeps (>= n_days + any horizon).
    """

    name: str
    n_users: int
    n_days: int = 63
    start_ms: int = SPARKIFY_START_MS
    chunk_users: int = 1_000
    hazard_days: int = 120
    churn_boost: float = 0.0  # added to the hazard logit (tiny: make sure a few dozen users still churn)


PRESETS: Final[dict[str, Preset]] = {
    "tiny": Preset(name="tiny", n_users=60, churn_boost=0.5),
    "mini": Preset(name="mini", n_users=225),
    "medium": Preset(name="medium", n_users=448),
    "full": Preset(name="full", n_users=19_600),
}


@dataclass(frozen=True)
class WorldParams:
    """Parameters of the latent churn story (see docs/simulator.md for the story they tell).

    Latent state per user: a static engagement trait ``e ~ N(0, 1)`` and a daily satisfaction AR(1)
    process ``s`` around a user mean. Behaviour rates and the daily churn hazard are log-linear / logistic
    in (s, e, level, tenure); observed counts are Poisson/negative-binomial draws around those rates.
    """

    # satisfaction process: s_t = mu + rho (s_{t-1} - mu) + sigma eps_t, mu ~ N(free_shift*free, mu_sd)
    sat_rho: float = 0.95
    sat_sigma: float = 0.32
    sat_mu_sd: float = 0.55
    sat_free_shift: float = -0.25
    sat_ad_penalty: float = 0.004  # satisfaction lost per advert heard in a day (free users)
    # hazard: logit h = a + b_s (-s) + b_e (-e) + b_free free + b_new new + boost
    hazard_intercept: float = -6.33
    hazard_sat: float = 1.45
    hazard_eng: float = 0.30
    hazard_free: float = 0.30
    hazard_new_user: float = 0.45
    new_user_days: int = 30
    cancel_share_paid: float = 0.82  # share of churners who cancel explicitly (others go silent)
    cancel_share_free: float = 0.68
    # sessions: gamma renewal gaps (shape) with mean gap_days exp(-gap_eng e - gap_sat s)
    gap_days: float = 5.0
    gap_shape: float = 4.0
    gap_eng: float = 0.35
    gap_sat: float = 0.30
    gap_min_days: float = 1.0
    gap_max_days: float = 14.0
    # songs per session: negative binomial, mean songs exp(songs_eng e + songs_sat s), dispersion
    songs_per_session: float = 79.0
    songs_eng: float = 0.38
    songs_sat: float = 0.15
    songs_dispersion: float = 1.3
    final_session_songs: float = 15.0
    # other pages per song (rate x exp(sat_coef s)); ads and upgrade/downgrade depend on level
    thumbs_up: float = 0.0446
    thumbs_down: float = 0.01148
    home: float = 0.0441
    playlist: float = 0.0254
    friend: float = 0.01654
    settings: float = 0.00733
    save_settings: float = 0.00145
    help: float = 0.00677
    about: float = 0.00219
    error: float = 0.00116
    ads_free: float = 0.0766
    ads_paid: float = 0.00135
    upgrade_page_free: float = 0.0072
    downgrade_page_paid: float = 0.012
    logouts_per_session: float = 1.4
    anon_extra_per_logout: float = 0.56  # Logged Out events per logout beyond the Home + Login pair
    sat_coef_up: float = 0.30
    sat_coef_down: float = -0.60
    sat_coef_social: float = 0.20
    sat_coef_trouble: float = -0.45  # help, error, settings
    sat_coef_downgrade: float = -0.55
    # level: initial paid probability logistic in e; per-session switch probabilities
    paid_intercept: float = -0.4
    paid_eng: float = 0.8
    upgrade_per_session: float = 0.28
    downgrade_per_session: float = 0.0356
    downgrade_sat: float = -0.6
    # registration: tenure at the start ~ Uniform(0, max); a share registers during the window
    tenure_max_days: float = 200.0
    new_in_window_share: float = 0.10
    guest_sessions_per_user: float = 0.085
    # song catalogue
    n_artists: int = 20_000
    n_songs: int = 80_000
    song_popularity_exponent: float = 2.4


SCENARIOS: Final[dict[str, WorldParams]] = {
    "default": WorldParams(),
    # A changed behaviour mix for drift monitoring: more ads and errors, shorter sessions, fewer thumbs up.
    "drifted": replace(
        WorldParams(),
        ads_free=0.12,
        error=0.0030,
        songs_per_session=48.0,
        thumbs_up=0.035,
        thumbs_down=0.016,
        sat_free_shift=-0.45,
    ),
}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``; raise ValueError naming the known presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown simulator preset {name!r}; known presets: {sorted(PRESETS)}")
    return PRESETS[name]


def get_scenario(name: str) -> WorldParams:
    """Return the scenario called ``name``; raise ValueError naming the known scenarios otherwise."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown simulator scenario {name!r}; known scenarios: {sorted(SCENARIOS)}")
    return SCENARIOS[name]
