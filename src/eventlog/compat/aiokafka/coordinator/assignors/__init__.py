"""aiokafka.coordinator.assignors: the assignor classes a consumer's
``partition_assignment_strategy`` names (eventlog's own assignors do the work)."""
