"""Project settings. kedro-dolt's hooks register themselves through their entry point; to
switch them off: DISABLE_HOOKS_FOR_PLUGINS = ("kedro-dolt",)."""

# Kedro's defaults, plus a soft merge of catalogs: conf/server/catalog.yml only overrides
# where each Dolt dataset lives (`kedro run --env server`), key by key.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "merge_strategy": {"catalog": "soft"},
}
