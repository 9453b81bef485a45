"""Producer metrics: Kafka's producer-metrics, summed over the queues and windowed."""

from __future__ import annotations

from ..metrics.window import average, max_of, rate_per_s
from .accumulator import State
from .queues import QueueStats

__all__ = ["producer_metrics"]


def producer_metrics(state: State) -> dict[str, float]:
    """Kafka's producer-metrics of ``state``'s queues (see Producer.metrics)."""
    queues = list(state.queues.values())
    stats = [q.stats for q in queues]
    columns = [sum(column) for column in zip(*(s.totals() for s in stats))] or [0] * len(
        QueueStats.totals_fields)
    totals = dict(zip(QueueStats.totals_fields, columns))
    sent = sum(q.sent for q in queues) + totals["batch_records"]
    now_ms = state.log.clock.monotonic_ms()
    with state.metrics_lock:
        elapsed_ms, deltas = state.window.deltas(now_ms, (sent, *columns))
    d = dict(zip(("sent", *QueueStats.totals_fields), deltas))
    return {
        "record-send-total": sent,
        "record-send-rate": rate_per_s(d["sent"], elapsed_ms),
        "record-error-total": totals["errors"],
        "record-error-rate": rate_per_s(d["errors"], elapsed_ms),
        "record-retry-total": totals["retries"],
        "record-retry-rate": rate_per_s(d["retries"], elapsed_ms),
        "request-total": totals["batches"],
        "request-rate": rate_per_s(d["batches"], elapsed_ms),
        "outgoing-byte-total": totals["bytes"],
        "outgoing-byte-rate": rate_per_s(d["bytes"], elapsed_ms),
        "batch-size-avg": average(d["bytes"], d["batches"]),
        "batch-size-max": max_of([s.batch_bytes_max.value(now_ms) for s in stats]),
        "records-per-request-avg": average(d["batch_records"], d["batches"]),
        "compression-rate-avg": average(d["ratio_sum"], d["batches"]),
        "request-latency-avg": average(d["latency_ms"], d["batches"]),
        "request-latency-max": max_of([s.latency_max.value(now_ms) for s in stats]),
        "record-queue-time-avg": average(d["queue_ms"], d["queued_batches"]),
        "record-queue-time-max": max_of([s.queue_time_max.value(now_ms) for s in stats]),
        # The accumulator holds at most one open batch per partition: what they can
        # still take before they are appended (Kafka's is what buffer.memory has left).
        "buffer-available-bytes": sum(max(0, q.batch_bytes_max - q.bytes) for q in queues),
        "pending_records": sum(len(q.keys) for q in queues),
        "producer_id": state.producer_id,
    }
