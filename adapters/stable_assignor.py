"""Partitions that stay with their worker across restarts, for workers that keep no standby table copies.

Without standbys (the embedded broker: docs/operations.md, "Embedded broker storage") a worker's RocksDB tables
are current only for the partitions it held last. Faust's assignor is sticky only to what a member held in this
process's life, so workers restarted together are dealt partitions at random, and each then replays, whole, the
changelog of every partition it had not held. This one deals partition ``p`` of every topic to the
``p mod n``-th of the ``n`` members ordered by their URL (`medialane up` gives each worker its own port), the
same partitions for the same workers every time; Faust's own assignor then keeps that claim, as it keeps any
balanced one. With a member gone the others take its partitions, and give them back when it returns.
"""

from __future__ import annotations

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from faust.assignor import PartitionAssignor
from faust.assignor.client_assignment import ClientAssignment, ClientMetadata


def dealt(partitions: list[int], index: int, members: int) -> list[int]:
    """The partitions of a topic the ``index``-th of ``members`` holds."""
    return [p for p in sorted(partitions) if p % members == index]


class StableAssignor(PartitionAssignor):
    def _perform_assignment(self, cluster: ClusterMetadata, member_metadata: dict) -> dict:
        clients = {member: ClientMetadata.loads(metadata.user_data) for member, metadata in member_metadata.items()}
        order = sorted(clients, key=lambda member: (clients[member].url, member))
        claimed = {}
        for index, member in enumerate(order):
            metadata = member_metadata[member]
            actives = {topic: dealt(list(cluster.partitions_for_topic(topic) or ()), index, len(order))
                       for topic in metadata.subscription}  # fmt: skip
            client = clients[member]
            client.assignment = ClientAssignment(actives=actives, standbys={})
            claimed[member] = ConsumerProtocolMemberMetadata(metadata.version, metadata.subscription, client.dumps())
        return super()._perform_assignment(cluster, claimed)
