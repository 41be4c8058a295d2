"""Project pipelines."""

from kedro.pipeline import Pipeline

from weather_stations.pipelines import weather


def register_pipelines() -> dict[str, Pipeline]:
    pipeline = weather.create_pipeline()
    return {"__default__": pipeline, "weather": pipeline}
