"""The worker classes ``flask workers run`` uses.

``PortalWorker`` (the default) runs jobs of the ``events`` queue in the worker process — they
are short database transactions, and a work horse per delivery would cost a fork and a new
PostgreSQL connection each — and forks a work horse for every other queue (long integration
jobs: isolation, hard timeouts, memory returned after each job). Job timeouts apply to both
(in-process jobs are interrupted by SIGALRM). Every job runs with its correlation id set, so
RQ's own log lines about it carry the id too.
"""

from __future__ import annotations

from rq import SimpleWorker, Worker
from rq.worker import WorkerStatus

from portal.logging import correlation_scope

IN_PROCESS_QUEUES = frozenset({"events"})


class CorrelationMixin:
    def execute_job(self, job, queue):
        with correlation_scope(job.meta.get("correlation_id") or job.id):
            return super().execute_job(job, queue)


class PortalWorker(CorrelationMixin, Worker):
    """Events in process, everything else in a forked work horse."""

    in_process_queues = IN_PROCESS_QUEUES
    _in_process = False

    def execute_job(self, job, queue):
        if queue.name not in self.in_process_queues:
            return super().execute_job(job, queue)
        with correlation_scope(job.meta.get("correlation_id") or job.id):
            self._in_process = True
            try:  # what SimpleWorker.execute_job does
                execution = self.prepare_execution(job)
                self.perform_job(job, queue, execution)
                self.set_state(WorkerStatus.IDLE)
            finally:
                self._in_process = False

    def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
        if self._in_process:  # nobody refreshes the heartbeat while the job runs
            return SimpleWorker.get_heartbeat_ttl(self, job, working_time)
        return super().get_heartbeat_ttl(job, working_time)


class ForkingWorker(CorrelationMixin, Worker):
    """A work horse per job, whatever the queue."""


class PortalSimpleWorker(CorrelationMixin, SimpleWorker):
    """Every job in the worker process."""


WORKER_CLASSES = {"default": PortalWorker, "fork": ForkingWorker, "simple": PortalSimpleWorker}
