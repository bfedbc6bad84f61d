"""The workload child process: ``python -m carbontop.child --workload NAME --events-fd FD ...``.

carbontop's monitor (:mod:`carbontop.runner`) starts it with an argument list (no shell) and a
pipe. The child runs one workload through its phases and writes one event line
(:mod:`carbontop.events`) per :class:`carbontop.model.ProgressEvent` to the pipe; the workload's own
stdout/stderr go to a log file. Phases (docs/measurement.md, rules 9 and 11): ``loading``
(imports and ``setup()``), ``warm-up`` (``step()`` for ``warmup_s``, not measured), then
``measuring`` (``step()`` for ``--duration`` seconds of the session clock, or until the workload
ends). ``synchronize()`` runs at every window edge, before the event that marks it.

Events: ``phase``, ``subphase``, ``units`` (cumulative in the current phase, at most every 0.25 s
and at its end), ``info``, ``error`` (then exit code 1) and ``done`` (stamped at the end of the
measured window, sent before teardown); ``t_s`` is when it happened on the session clock (an
edge's stamp is taken at the edge, a program's progress line brings its own). The child exits when
its parent dies (PR_SET_PDEATHSIG and a ``getppid()`` check) and promptly on SIGTERM/SIGINT.

``--command-json '["python", "train.py"]'`` runs a plain command instead of a workload: loading,
then the whole command as the measured window (one unit, "run", when it exits 0), unless it
reports its own phases and units with the progress protocol (:mod:`carbontop.progress`), whose
lines are applied as soon as they are written.

One job per module:

- :mod:`.main`: the command line, the process's setup, and how the run ends (done, error, stopped)
- :mod:`.phases`: the phases, units and sub-phases so far, and the events that report them
- :mod:`.loop`: a workload's loop (setup, warm-up, measuring) and its ``progress`` hook
- :mod:`.command`: a plain command as the workload
- :mod:`.progress_reader`: a command's progress lines applied as they come
- :mod:`.loading`: finding the Workload class (entry point, ``module:Class``, a file)
- :mod:`.signals`: SIGTERM/SIGINT and the parent's death, turned into :class:`.signals.Terminated`
- :mod:`.writer`: event lines onto the pipe

Like the plugin API it runs, the child runs under the workload's Python, 3.8 on JetPack 5:
standard library only (and 3.8's), plus the carbontop modules pyproject.toml's contract names.
"""
