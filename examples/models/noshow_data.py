"""Synthetic appointments with the no-show project's schema (23 features, DESIGN.md).

The real data cannot be shipped; these rows have the same columns, types and ranges,
about 5% missing values in the columns that were incomplete, and a real signal: bad
weather, long distances, no SMS reminder, long waits and long booking lead times make a
cancellation more likely. `make_noshow(n, seed)` is deterministic.

    python examples/models/noshow_data.py --rows 100000 --seed 7 --out noshow.csv
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

FEATURES = [
    "Scholarship", "Hypertension", "Diabetes", "Alcoholism", "Disability",
    "Days_Between_Scheduling_and_Appointment", "Hospital_Area", "Specialty", "Facility_Type",
    "Distance_km", "Type_of_Care", "Previously_Treated", "Age", "Social_Status", "SMS_Received",
    "Weather_Conditions", "Appointment_Time", "Gender", "Consultations_Last_12_Months",
    "Waiting_Time_Minutes", "Hospital_Rating", "Average_Fee", "Number_days",
]
TARGET = "Appointment_Status"
# Columns that were incomplete in the source data get ~5% NaN.
MISSING = ["Distance_km", "Hospital_Rating", "Average_Fee", "Waiting_Time_Minutes"]


def make_noshow(n_rows: int, seed: int = 0, missing_rate: float = 0.05) -> tuple[pd.DataFrame, np.ndarray]:
    """(features as float32 DataFrame in the project's column order, 0/1 target)."""
    rng = np.random.default_rng(seed)
    n = n_rows
    age = np.clip(rng.gamma(4.0, 10.0, n), 0, 100).round()
    days_between = np.minimum(rng.exponential(14.0, n), 180).round()
    distance = rng.lognormal(1.8, 0.8, n).round(2)
    sms = rng.binomial(1, 0.55, n)
    weather = rng.binomial(1, 0.25, n)
    waiting = np.clip(rng.normal(35, 20, n), 0, 180).round()
    slots = rng.integers(0, (19 - 7) * 12, n)                      # 5-minute slots 07:00-19:00
    appointment_time = 7 * 3600 + slots * 300
    rating = np.clip(rng.normal(3.8, 0.8, n), 1, 5).round(1)
    fee = np.clip(rng.lognormal(3.5, 0.6, n), 5, 500).round(2)
    consultations = rng.poisson(2.5, n)
    frame = pd.DataFrame({
        "Scholarship": rng.binomial(1, 0.1, n),
        "Hypertension": rng.binomial(1, 0.2 + 0.004 * np.clip(age - 40, 0, 50)),
        "Diabetes": rng.binomial(1, 0.07, n),
        "Alcoholism": rng.binomial(1, 0.03, n),
        "Disability": rng.binomial(1, 0.02, n),
        "Days_Between_Scheduling_and_Appointment": days_between,
        "Hospital_Area": rng.integers(0, 12, n),
        "Specialty": rng.integers(0, 8, n),
        "Facility_Type": rng.integers(0, 3, n),
        "Distance_km": distance,
        "Type_of_Care": rng.integers(0, 4, n),
        "Previously_Treated": rng.binomial(1, 0.4, n),
        "Age": age,
        "Social_Status": rng.integers(0, 5, n),
        "SMS_Received": sms,
        "Weather_Conditions": weather,
        "Appointment_Time": appointment_time,
        "Gender": rng.binomial(1, 0.6, n),
        "Consultations_Last_12_Months": consultations,
        "Waiting_Time_Minutes": waiting,
        "Hospital_Rating": rating,
        "Average_Fee": fee,
        "Number_days": days_between + rng.integers(0, 3, n),
    })
    specialty_effect = np.array([0.0, 0.3, -0.2, 0.1, 0.4, -0.1, 0.2, 0.0])[frame["Specialty"]]
    logit = (-2.2 + 1.1 * weather + 0.35 * np.log1p(distance) - 0.7 * sms + 0.012 * waiting
             + 0.025 * days_between - 0.008 * (age - 40) - 0.25 * (rating - 3.8) + 0.004 * (fee - 40)
             - 0.2 * frame["Previously_Treated"].to_numpy() + specialty_effect
             + 0.15 * (appointment_time < 9 * 3600) + 0.3 * frame["Scholarship"].to_numpy())
    target = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    for column in MISSING:
        mask = rng.random(n) < missing_rate
        frame.loc[mask, column] = np.nan
    return frame[FEATURES].astype(np.float32), target.astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help=".csv or .parquet")
    args = parser.parse_args()
    frame, target = make_noshow(args.rows, args.seed)
    frame[TARGET] = target
    if args.out.endswith(".parquet"):
        frame.to_parquet(args.out, index=False)
    else:
        frame.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
