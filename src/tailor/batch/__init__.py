"""Batch work over a serving store's users, here or one Ray task per piece
(:mod:`tailor.training.executors`): ``tailor summaries build`` writes each user's profile
summary (:mod:`tailor.batch.summaries`), ``tailor personas build --executor ray`` each
persona's description (:mod:`tailor.batch.personas`), both exactly as the server and the
local command write them (:mod:`tailor.batch.models`: the model a task writes with)."""
