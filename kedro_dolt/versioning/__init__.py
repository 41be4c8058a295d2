"""The domain of versioned saves: where a save commits (:mod:`.strategies`), how a repository
stays in step with a remote (:mod:`.remote`), what each load and save records
(:mod:`.records`) and the commit message of a save (:mod:`.commits`)."""
