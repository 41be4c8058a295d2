"""Every SQL text kedro-dolt sends to Dolt, built once as values that a transport runs.

* :mod:`.common`: refs, authors, ``USE``, the scratch-branch listing;
* :mod:`.repository`: branches, tags, the log, remotes, databases;
* :mod:`.tables`: reading tables, their hashes, diffs and history;
* :mod:`.saves`: the guarded save script and its bodies (rows as :class:`~..transport.Load`);
* :mod:`.merges`: the merge script and the conflict previews.

Names and refs are validated and quoted here (:mod:`kedro_dolt.naming`): nothing else puts a
value into SQL.
"""
