"""What the SQLite adapters tell the driver once their writes commit (a no-op base; the driver
sets its own)."""


class _Hooks:
    """What the adapters tell the driver once their writes commit."""

    def queue_changed(self, execution_id: str) -> None:
        pass

    def tasks_changed(self) -> None:
        pass

    def timers_changed(self) -> None:
        pass

    def outbox_changed(self) -> None:
        pass
