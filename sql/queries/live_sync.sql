-- A barrier for read-your-writes (issue 22): an instance notifies itself on `cockpit_sync`
-- and answers a query from a live snapshot only once its listener has received this
-- notification and the snapshot's group has handled everything received before it.
-- Notifications reach a listener in commit order, so every change committed before this
-- statement (a write acknowledged anywhere) has been received by then.
-- $1 payload text: {"instance": <this instance's id>, "n": <barrier number>}.
SELECT pg_notify('cockpit_sync', $1::text)
