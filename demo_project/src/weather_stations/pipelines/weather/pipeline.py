"""The weather pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from .nodes import build_features, build_metrics, clean, ingest, report


def create_pipeline(**kwargs: object) -> Pipeline:
    return pipeline(
        [
            node(
                ingest,
                ["readings_batch_1", "readings_batch_2", "params:batches"],
                "raw_readings",
                name="ingest",
            ),
            node(clean, "raw_readings", "clean_readings", name="clean"),
            node(
                build_features,
                ["clean_readings", "params:rainy_day_mm"],
                "station_features",
                name="build_features",
            ),
            node(build_metrics, "station_features", "station_metrics", name="build_metrics"),
            node(
                report, ["station_metrics", "station_rainfall"], "station_report", name="report"
            ),
        ]
    )
