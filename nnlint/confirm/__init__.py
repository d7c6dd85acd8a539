"""The confirm pass (`nnlint --confirm`): run the user's models on probes to judge the static findings.

The parent side (run, sandbox, project, safe_load, protocol, reshape) never
imports torch; child, session, models, intercept, universal and schedule
run only in the child process. Rule files import only `protocol`. See
docs/confirm.md.
"""
