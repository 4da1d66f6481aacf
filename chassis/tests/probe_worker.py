"""A worker used by the chassis' own integration tests: relays its outbox and
consumes its own ``thing_happened`` events through a reliable handler."""

from chassis.events import process_once, reliable_handler
from chassis.mongo import connect
from chassis.nameko_deps import OutboxRelayProvider, Resource


class ProbeStore:
    def __init__(self, settings):
        self.client = connect(settings.mongo_uri, "probe")
        self.db = self.client[settings.mongo_db]

    def apply(self, event):
        if event["data"].get("fail"):
            raise RuntimeError("this event is set to fail")
        process_once(self.client, self.db, event,
                     lambda s: self.db["effects"].insert_one({"event_id": event["id"], "n": event["data"]["n"]},
                                                             session=s))


class ProbeWorker:
    name = "probe"
    relay = OutboxRelayProvider()
    store = Resource(ProbeStore)

    @reliable_handler("probe", "thing_happened", max_attempts=3, retry_delay_ms=100)
    def handle_thing_happened(self, event):
        self.store.apply(event)
