"""Membership: the consumer's side of the group protocol, its states in member_state's table.

*Protocols.* Eager: before every rejoin ``on_partitions_revoked(all owned)`` (even
if empty), after it ``on_partitions_assigned(new assignment)``. Cooperative: before
rejoining revoke only partitions of topics no longer subscribed; after the join
``on_partitions_revoked(owned - assigned)`` if any (then rejoin at once for the
follow-up rebalance), then ``on_partitions_assigned(assigned - owned)``, always.
A member that lost its membership (evicted, fenced) gets
``on_partitions_lost(owned)``. A callback's exception propagates out of ``poll``
after the step that called it completed: the assignment is not affected.

Every change of :attr:`Membership.state` goes through :meth:`Membership._transition`,
which asks :func:`~eventlog.consumer.member_state.next_state` (an unlisted transition
is a bug and raises AssertionError).
"""

from __future__ import annotations

from ..broker import Broker
from ..errors import (
    CommitFailedError,
    FencedInstanceIdError,
    GroupError,
    IllegalGenerationError,
    InvalidConfigError,
    RebalanceInProgressError,
    TopicError,
    UnknownMemberError,
    UnknownTopicError,
)
from ..group.assignors import Assignor
from ..group.coordinator import GroupCoordinator, JoinRequest, JoinResult
from ..records import ConsumerGroupMetadata, TopicPartition
from .commits import Committer
from .config import ConsumerConfig
from .listener import Callbacks
from .member_state import MemberEvent, MemberState, next_state
from .positions import Positions
from .stats import ConsumerStats
from .subscription import Subscription

__all__ = ["Membership", "coordinate_steps_max"]

_EAGER = "eager"
_E = MemberEvent
coordinate_steps_max = 8  # protocol steps per poll: revoke, join, collect, revoke, rejoin...


class Membership:
    """Member id, generation and state of one consumer in its group, and the steps
    that move them (the module docstring). Used by the thread holding the consumer's
    lock; never blocks: each coordinator call returns at once."""

    def __init__(
        self, log: Broker, config: ConsumerConfig, coordinator: GroupCoordinator | None,
        client_id: str, assignors: tuple[Assignor, ...], protocol: str,
        parts: tuple[Subscription, Positions, Callbacks, Committer, ConsumerStats],
    ) -> None:
        self._log = log
        self._config = config
        self._coordinator = coordinator
        self._group_id = config.group_id
        self._client_id = client_id
        self._assignors = assignors
        self.protocol = protocol
        (self._subscription, self._positions, self._callbacks, self._committer,
         self._stats) = parts
        # A read-only log (another process writes it): a group is only a view of the
        # committed offsets there; subscribe() owns every partition (docs/consumers.md).
        self._standalone = coordinator is None or bool(log.read_only)
        self.member_id = ""
        self.generation = -1
        self.state = MemberState.UNJOINED
        self.joined_topics: tuple[str, ...] = ()
        self.rejoin_needed = False
        self._standalone_signature: tuple = ()

    def _transition(self, event: MemberEvent) -> None:
        """The only place the member state changes: by the table."""
        self.state = next_state(self.state, event)

    # ------------------------------------------------------------------ one poll's steps

    def coordinate(self) -> None:
        """Take the group-protocol steps possible now. Non-blocking."""
        if not self._subscription.subscribed:
            return
        if self._standalone:
            self._coordinate_standalone()
            return
        if self.state is MemberState.FENCED:
            raise FencedInstanceIdError(
                f"group_instance_id {self._config.group_instance_id!r} was taken over by "
                "another consumer; close this one"
            )
        topics = self._subscription.topics_now(self._log, self._config.exclude_internal_topics)
        for _ in range(coordinate_steps_max):
            if self._callbacks.error is not None:
                return
            if self.state is MemberState.STABLE:
                if topics != self.joined_topics or self.rejoin_needed:
                    self._prepare_join(topics)
                elif self._heartbeat(topics):
                    return
            elif not self._join(topics):
                return

    def _heartbeat(self, topics: tuple[str, ...]) -> bool:
        """True if the member is stable and nothing needs doing."""
        assert self._coordinator is not None and self._group_id is not None
        try:
            self._coordinator.heartbeat(
                self._group_id, self.member_id, self.generation, self._config.group_instance_id
            )
        except RebalanceInProgressError:
            self._prepare_join(topics)
            return False
        except IllegalGenerationError:
            self._lose(_E.LOST, reset_member=False)
            return False
        except UnknownMemberError:
            self._lose(_E.LOST, reset_member=True)
            return False
        except FencedInstanceIdError:
            self._lose(_E.FENCED, reset_member=False)
            raise
        return True

    def _join(self, topics: tuple[str, ...]) -> bool:
        """Send (or repeat) the join; True if a step was taken, False if pending."""
        assert self._coordinator is not None and self._group_id is not None
        cfg = self._config
        request = JoinRequest(
            self._client_id, cfg.group_instance_id, topics, self._assignors, self.protocol,
            cfg.session_timeout_ms, cfg.max_poll_interval_ms,
        )
        try:
            result = self._coordinator.join_group(self._group_id, self.member_id, request)
        except UnknownMemberError:
            self._lose(_E.LOST, reset_member=True)
            return True
        except FencedInstanceIdError:
            self._lose(_E.FENCED, reset_member=False)
            raise
        self.member_id = result.member_id
        self.joined_topics = topics
        if result.assignment is None:
            self._transition(_E.JOIN_PENDING)
            return False
        self._on_join_complete(result)
        return True

    def _prepare_join(self, topics: tuple[str, ...]) -> None:
        """Kafka's onJoinPrepare: commit, revoke what the protocol requires, then rejoin."""
        self.auto_commit()
        assigned = self._positions.assigned
        if self.protocol == _EAGER:
            revoked = sorted(assigned)
            self._callbacks.call("on_partitions_revoked", revoked)
        else:
            wanted = set(topics)
            revoked = sorted(tp for tp in assigned if tp.topic not in wanted)
            if revoked:
                self._callbacks.call("on_partitions_revoked", revoked)
        self._drop(revoked)
        self._transition(_E.REJOIN)
        self.rejoin_needed = False

    def _on_join_complete(self, result: JoinResult) -> None:
        """Kafka's onJoinComplete: take the new assignment, with the protocol's callbacks."""
        assignment = result.assignment
        assert assignment is not None
        self.generation = result.generation
        self._transition(_E.JOIN_COMPLETE)
        self._stats.rebalanced(self._log.clock.monotonic_ms())
        assigned = self._positions.assigned
        new = set(assignment)
        revoked = sorted(tp for tp in assigned if tp not in new)
        added = sorted(tp for tp in assignment if tp not in assigned)
        if revoked:  # cooperative only: an eager member revoked everything before joining
            self.auto_commit()
            self._callbacks.call("on_partitions_revoked", revoked)
            self._drop(revoked)
            self.rejoin_needed = True
        for tp in added:
            self._positions.add(tp)
        self._committer.restart_timer(self._log.clock.monotonic_ms())
        self._callbacks.call("on_partitions_assigned",
                             sorted(assignment) if self.protocol == _EAGER else added)

    def _lose(self, event: MemberEvent, *, reset_member: bool) -> None:
        """Kafka's onPartitionsLost: the membership is gone; drop everything owned."""
        lost = sorted(self._positions.assigned)
        if lost:
            self._callbacks.call("on_partitions_lost", lost)
        self._drop(lost)
        self.generation = -1
        self._transition(event)
        if reset_member:
            self.member_id = ""

    def leave(self) -> None:
        """Kafka's onLeavePrepare + maybeLeaveGroup: revoke (or lose), then leave."""
        owned = sorted(self._positions.assigned)
        if owned:
            # A read-only log's group is a view: its partitions were never the group's.
            stable = self._standalone or self.state is MemberState.STABLE
            self._callbacks.call("on_partitions_revoked" if stable else "on_partitions_lost",
                                 owned)
        self._drop(owned)
        self.leave_group()
        self.member_id, self.generation = "", -1
        self._transition(_E.LEAVE)
        self.joined_topics = ()
        self._standalone_signature = ()

    def leave_group(self) -> None:
        """Leave without callbacks (close() could not take the consumer from its poll)."""
        if self._coordinator is not None and self.member_id:
            assert self._group_id is not None
            self._coordinator.leave_group(self._group_id, self.member_id)

    def group_metadata(self) -> ConsumerGroupMetadata:
        """The member's identity for ``send_offsets_to_transaction``; needs a group."""
        if self._group_id is None:
            raise InvalidConfigError(
                "group_metadata() needs a consumer with a group_id (Kafka's "
                "InvalidGroupIdException)"
            )
        return ConsumerGroupMetadata(self._group_id, self.generation, self.member_id,
                                     self._config.group_instance_id)

    def _drop(self, partitions: list[TopicPartition]) -> None:
        self._positions.drop(partitions)
        if partitions and self._coordinator is not None and self.member_id:
            assert self._group_id is not None
            self._coordinator.release(self._group_id, self.member_id, partitions)

    def _coordinate_standalone(self) -> None:
        """subscribe() without a group: own every partition of the subscribed topics."""
        topics = self._subscription.topics_now(self._log, self._config.exclude_internal_topics)
        counts = []
        for topic in topics:
            try:
                counts.append((topic, self._log.topic(topic).num_partitions))
            except UnknownTopicError:
                pass
        signature = tuple(counts)
        if signature == self._standalone_signature:
            return
        self._standalone_signature = signature
        target = [TopicPartition(t, i) for t, n in counts for i in range(n)]
        wanted = set(target)
        assigned = self._positions.assigned
        revoked = sorted(tp for tp in assigned if tp not in wanted)
        if revoked:
            self._callbacks.call("on_partitions_revoked", revoked)
            self._drop(revoked)
        added = [tp for tp in target if tp not in assigned]
        for tp in added:
            self._positions.add(tp)
        self._callbacks.call("on_partitions_assigned", added)

    # ------------------------------------------------------------------ commits

    def commit_identity(self) -> tuple[str, int]:
        """The (member id, generation) a commit is sent with: ("", -1) when not subscribed.

        Raises RebalanceInProgressError while joining, CommitFailedError when not a
        member."""
        if not self._subscription.subscribed:
            return "", -1
        if self.state is MemberState.JOINING:
            raise RebalanceInProgressError(
                "this member is rejoining its group; poll() to finish the rebalance, "
                "then commit the offsets of the partitions it still owns"
            )
        if self.state is not MemberState.STABLE:
            raise CommitFailedError(
                "this consumer is not an active member of its group (it has not joined "
                "yet, or it was removed); poll() to join, then commit"
            )
        return self.member_id, self.generation

    def auto_commit(self) -> None:
        """Commit the positions if auto-commit is on and the member may commit now;
        failures are ignored (Kafka logs them)."""
        if not self._committer.auto:
            return
        offsets = self._positions.consumed()
        if not offsets or (self._subscription.subscribed and self.state is not MemberState.STABLE):
            return
        try:
            self._committer.commit(offsets, *self.commit_identity())
        except (GroupError, TopicError):  # TopicError: a topic deleted under the consumer
            pass

    def check(self) -> None:
        """Assert the member's invariants and that the coordinator agrees on ownership."""
        assert isinstance(self.state, MemberState)
        if self.state in (MemberState.UNJOINED, MemberState.FENCED):
            assert self.generation == -1, (self.state, self.generation)
        if self.state is MemberState.STABLE:
            assert self.generation >= 0 and self.member_id, (self.generation, self.member_id)
        if self._coordinator is not None and self._group_id and self.member_id:
            owned = self._coordinator.owned(self._group_id).get(self.member_id)
            if owned is not None and self.state in (MemberState.STABLE, MemberState.JOINING):
                assert owned <= set(self._positions.assigned), (
                    owned, set(self._positions.assigned))
