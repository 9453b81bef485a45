"""aiokafka.coordinator: only its assignor classes, which configure a consumer."""
