"""Nodes of the weather pipeline: plain pandas, nothing Dolt-specific."""

from __future__ import annotations

import pandas as pd


def ingest(batch_1: pd.DataFrame, batch_2: pd.DataFrame, batches: int) -> pd.DataFrame:
    """The raw readings of the first ``batches`` batches; later batches correct earlier days."""
    frames = [batch_1, batch_2][: max(1, int(batches))]
    raw = pd.concat(frames, ignore_index=True)
    raw["date"] = pd.to_datetime(raw["date"]).astype("datetime64[ns]")
    raw = raw.drop_duplicates(subset=["station_id", "date"], keep="last")
    return raw.sort_values(["station_id", "date"], ignore_index=True)


def clean(raw: pd.DataFrame) -> pd.DataFrame:
    """Drop readings without a temperature; missing or negative rain counts as none."""
    cleaned = raw.dropna(subset=["temp_c"]).copy()
    cleaned["rain_mm"] = cleaned["rain_mm"].fillna(0.0).clip(lower=0.0)
    return cleaned.reset_index(drop=True)


def build_features(readings: pd.DataFrame, rainy_day_mm: float) -> pd.DataFrame:
    """Per station and day: 3-day mean temperature and whether it was a rainy day."""
    features = readings.sort_values(["station_id", "date"]).copy()
    features["temp_3d_mean"] = (
        features.groupby("station_id")["temp_c"]
        .transform(lambda s: s.rolling(3, min_periods=1).mean())
        .round(2)
    )
    features["rainy"] = features["rain_mm"] >= rainy_day_mm
    columns = ["station_id", "date", "temp_c", "temp_3d_mean", "rain_mm", "rainy", "wind_kmh"]
    return features[columns].reset_index(drop=True)


def build_metrics(features: pd.DataFrame) -> pd.DataFrame:
    """Per station: days observed, mean temperature, share of rainy days, max wind."""
    grouped = features.groupby("station_id")
    metrics = pd.DataFrame(
        {
            "days": grouped.size(),
            "mean_temp_c": grouped["temp_c"].mean().round(2),
            "rainy_share": grouped["rainy"].mean().round(3),
            "max_wind_kmh": grouped["wind_kmh"].max(),
        }
    )
    return metrics.reset_index()


def report(metrics: pd.DataFrame, rainfall: pd.DataFrame) -> pd.DataFrame:
    """Metrics with the total rainfall from the SQL query, one row per station."""
    return metrics.merge(rainfall, on="station_id", how="left")
