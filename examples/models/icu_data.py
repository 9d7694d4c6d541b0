"""Synthetic ICU vital-sign sequences with the ICU stroke-alert project's schema.

MIMIC-III cannot be shipped, so patients are simulated: hourly values of 8 vitals in raw
clinical units (each patient has a baseline, values wander around it as AR(1) noise with
a slow drift), four static features, and a stroke-alert label decided by a rule on the
last 12 hours, with noise, so that the models learn something and outputs spread over
(0, 1). numpy only: the model script (TensorFlow), the parity tests and the benchmark
share it.

    make_cohort(rng, patients, steps) -> vitals [P, T, 8] float32, static [P, 4] float32,
                                         labels [P] float32 (0/1)
"""
from __future__ import annotations

import numpy as np

#: The 8 vitals, in model input order.
VITAL_NAMES = ["heart_rate", "systolic_bp", "diastolic_bp", "mean_arterial_pressure",
               "respiratory_rate", "spo2", "temperature", "gcs"]
#: The static features of the two-branch model, in input order.
STATIC_NAMES = ["sex", "age", "height", "weight"]
#: Hidden units of every recurrent layer.
HIDDEN = 64

#: Where each vital stays when the patient is (roughly) well: mean, spread between
#: patients, hour-to-hour noise, plausible bounds (clinical units).
_BASELINE = {
    #                         mean   between  noise   low    high
    "heart_rate":             (82.0, 12.0,    3.0,    30.0,  200.0),
    "systolic_bp":            (122.0, 16.0,   5.0,    60.0,  240.0),
    "diastolic_bp":           (68.0, 9.0,     3.5,    30.0,  140.0),
    "respiratory_rate":       (17.0, 3.0,     1.5,    6.0,   45.0),
    "spo2":                   (96.5, 1.5,     0.8,    70.0,  100.0),
    "temperature":            (37.0, 0.4,     0.12,   34.0,  41.5),
}


def make_static(rng: np.random.Generator, patients: int) -> np.ndarray:
    """sex (0/1), age (years), height (cm), weight (kg): adult ICU-like distributions."""
    sex = (rng.random(patients) < 0.55).astype(np.float64)   # 1 = male
    age = np.clip(rng.normal(64, 15, patients), 18, 98)
    height = np.where(sex == 1, rng.normal(176, 7, patients), rng.normal(163, 6.5, patients))
    bmi = np.clip(rng.normal(27.5, 5.5, patients), 16, 55)
    weight = bmi * (height / 100) ** 2
    return np.stack([sex, np.round(age), np.round(height), np.round(weight, 1)], axis=1).astype(np.float32)


def make_cohort(rng: np.random.Generator, patients: int, steps: int = 48):
    """`patients` sequences of `steps` hourly vitals, their static rows and labels.

    About a third of the patients deteriorate: from an onset hour on, their blood pressure
    (and so MAP) and heart rate swing more and more, GCS falls and SpO2 sags. The label is
    a noisy rule on the last 12 hours (MAP and heart-rate variability up, GCS and SpO2 down,
    older patients more at risk), so it is learnable but not a copy of the latent state."""
    static = make_static(rng, patients)
    age = static[:, 1].astype(np.float64)
    t = np.arange(steps, dtype=np.float64)
    vitals = np.empty((patients, steps, len(VITAL_NAMES)), dtype=np.float64)

    deteriorates = rng.random(patients) < 0.30 + 0.004 * (age - 64)
    onset = rng.uniform(0.3, 1.0, patients) * steps
    # 0 before onset, then ramps to 1 over ~10 hours
    severity = np.clip((t[None, :] - onset[:, None]) / rng.uniform(6, 14, (patients, 1)), 0, 1)
    severity *= deteriorates[:, None]

    def wander(mean, between, noise, drift_scale=0.02):
        base = rng.normal(mean, between, (patients, 1))
        drift = rng.normal(0, drift_scale * between, (patients, 1)) * t[None, :]
        ar = np.zeros((patients, steps))
        shocks = rng.normal(0, noise, (patients, steps))
        for k in range(steps):
            ar[:, k] = (0.7 * ar[:, k - 1] if k else 0) + shocks[:, k]
        return base + drift + ar

    names = VITAL_NAMES
    swings = rng.normal(0, 1, (patients, steps))
    hr = wander(*_BASELINE["heart_rate"][:3]) + severity * (8 + 14 * swings)
    sbp = wander(*_BASELINE["systolic_bp"][:3]) + 0.35 * (age[:, None] - 64) + severity * (20 + 22 * swings)
    dbp = wander(*_BASELINE["diastolic_bp"][:3]) + severity * (8 + 10 * swings)
    dbp = np.minimum(dbp, sbp - 15)
    rr = wander(*_BASELINE["respiratory_rate"][:3]) + severity * 4
    spo2 = wander(*_BASELINE["spo2"][:3]) - severity * rng.uniform(2, 8, (patients, 1))
    temp = wander(*_BASELINE["temperature"][:3], drift_scale=0.01) + severity * 0.3
    gcs_base = np.where(rng.random(patients) < 0.85, 15.0, rng.integers(9, 15, patients).astype(np.float64))
    gcs = gcs_base[:, None] - severity * rng.uniform(3, 9, (patients, 1)) + rng.normal(0, 0.4, (patients, steps))

    bounds = {n: _BASELINE[n][3:] for n in _BASELINE}
    for name, series in (("heart_rate", hr), ("systolic_bp", sbp), ("diastolic_bp", dbp),
                         ("respiratory_rate", rr), ("spo2", spo2), ("temperature", temp)):
        low, high = bounds[name]
        vitals[:, :, names.index(name)] = np.clip(series, low, high)
    vitals[:, :, names.index("gcs")] = np.clip(np.round(gcs), 3, 15)
    for name in ("heart_rate", "systolic_bp", "diastolic_bp", "respiratory_rate", "spo2"):
        vitals[:, :, names.index(name)] = np.round(vitals[:, :, names.index(name)])
    sbp, dbp = vitals[:, :, 1], vitals[:, :, 2]
    vitals[:, :, 3] = np.round((sbp + 2 * dbp) / 3 + rng.normal(0, 1.5, (patients, steps)), 1)
    vitals[:, :, 6] = np.round(vitals[:, :, 6], 1)

    last = vitals[:, -12:, :]
    score = (0.25 * (last[:, :, 3].std(axis=1) - 5)          # MAP swinging
             + 0.12 * (last[:, :, 0].std(axis=1) - 4)        # heart rate swinging
             + 0.8 * (vitals[:, :12, 7].mean(axis=1) - last[:, :, 7].mean(axis=1))   # GCS falling
             + 0.5 * (vitals[:, :12, 5].mean(axis=1) - last[:, :, 5].mean(axis=1))   # SpO2 falling
             + 0.03 * (age - 64) - 1.0)
    labels = (rng.random(patients) < 1 / (1 + np.exp(-score))).astype(np.float32)
    return vitals.astype(np.float32), static, labels


def vital_mean_std(vitals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-vital mean and standard deviation over every patient and hour."""
    flat = vitals.reshape(-1, vitals.shape[-1]).astype(np.float64)
    return flat.mean(axis=0), flat.std(axis=0) + 1e-3


def extreme_vitals(rng: np.random.Generator, patients: int, steps: int) -> np.ndarray:
    """Vitals at and past the edges of what monitors report (asystole and 250 bpm, MAP 20
    and 220, SpO2 50, temperature 30 and 43, GCS 3...), sprinkled into ordinary sequences:
    the kind of values that saturate the recurrent gates."""
    vitals, _, _ = make_cohort(rng, patients, steps)
    extremes = np.array([[0, 250], [40, 280], [15, 160], [20, 220], [0, 70], [50, 100],
                         [30, 43], [3, 15]], dtype=np.float32)
    mask = rng.random(vitals.shape) < 0.15
    pick = rng.integers(0, 2, vitals.shape)
    values = extremes[np.arange(len(VITAL_NAMES))[None, None, :], pick]
    vitals[mask] = values[mask]
    return vitals
