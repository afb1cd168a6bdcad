"""Run tasks end to end: load and prepare every task, encode every text once, score, write results.

One run (docs/architecture.md, "The data flow of a run")::

    resolve tasks ─▶ skip finished ones ─▶ load + prepare each task (raw data dropped once prepared)
      ─▶ one TextPool gets every task's requests ─▶ pool.embeddings() (encode once)
      ─▶ score each task ─▶ write {output}/{org}__{model}/{revision}/{Task}.json atomically
                            (a task mteb does not have: {revision}/fastmteb-only/{Task}.json)

``{revision}`` is the model's revision, or ``fp-<16 hex of its model fingerprint>`` for a model
without one (``fastmteb.provenance.revision_folder_name``): models of the same name with other
weights never share a folder.

A task that fails (bad data, a scorer error) is recorded and the others go on; nothing is written
for it. Finished tasks are skipped on a rerun unless ``overwrite=True``, or unless the stored
result came from other weights, settings that change scores or other data
(``fastmteb.provenance.reuse_problem``): such a task is evaluated again and the reason logged.

Where each part lives:

* ``api``: ``evaluate``, ``prepare_run``, ``resolve_tasks``;
* ``prepared``: ``PreparedRun``, the load + prepare -> encode -> score core that ``evaluate`` runs
  once and a training callback (``fastmteb.callbacks``) keeps across weight updates;
* ``resume``: which tasks are finished in the output folder and which files can be reused;
* ``writing``: result files, ``model_meta.json``, ``run_settings.jsonl``;
* ``agreement``: torch.distributed runs (ranks agree on loaded tasks and on failures);
* ``outcome``: ``RunResults``, ``TaskFailure``, ``TaskFailedError``;
* ``collaborators``: ``Collaborators``, the registry, loader, model loader and text pool a run
  calls, passed in (``Collaborators.default()`` unless the caller gives others).
"""

from fastmteb.runner.api import evaluate, prepare_run, resolve_tasks
from fastmteb.runner.collaborators import Collaborators
from fastmteb.runner.outcome import RunResults, TaskFailedError, TaskFailure
from fastmteb.runner.prepared import PreparedRun, RawTransform

__all__ = [
    "evaluate",
    "prepare_run",
    "resolve_tasks",
    "Collaborators",
    "PreparedRun",
    "RawTransform",
    "RunResults",
    "TaskFailure",
    "TaskFailedError",
]
