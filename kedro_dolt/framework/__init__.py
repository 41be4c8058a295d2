"""The Kedro side: the hook (:mod:`.hooks`), the ``kedro dolt`` commands (:mod:`.cli`) and
what kedro-dolt knows about the run in progress (:mod:`.context`)."""
