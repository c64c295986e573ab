import { Registry, type Counter, type Gauge, type Histogram } from '../common/metrics.js';

/** Every gateway metric in one place, so /metrics documents itself. */
export interface GatewayMetrics {
  registry: Registry;
  connections: Gauge;
  connectsRefused: Counter;
  tlsRefused: Counter;
  violations: Counter;
  eventsQueued: Counter;
  eventCopies: Counter;
  publishesRefused: Counter;
  publishesThrottled: Counter;
  commitBatch: Histogram;
  backlogDepth: Gauge;
  backlogOldestSeconds: Gauge;
  eventsForwarded: Counter;
  forwardFailures: Counter;
  breakerOpen: Gauge;
  outboundDepth: Gauge;
  outboundDelivered: Counter;
  commandsReceived: Counter;
  deadLettered: Counter;
  deadLetters: Gauge;
  reportsDropped: Counter;
  unwipedOldestSeconds: Gauge;
  wipes: Counter;
}

export function createGatewayMetrics(): GatewayMetrics {
  const r = new Registry();
  return {
    registry: r,
    connections: r.gauge('cf_gateway_connections', 'MQTT clients connected, by certificate role'),
    connectsRefused: r.counter('cf_gateway_connects_refused_total', 'Connections refused, by reason (reason="tls": the certificate did not verify or the handshake failed)'),
    tlsRefused: r.counter('cf_gateway_tls_refused_total', 'Connections refused at the TLS stage, by reason (no-certificate, unknown-ca, expired, not-yet-valid, other-tenant, unverified, handshake-failed)'),
    violations: r.counter('cf_gateway_limit_violations_total', 'Clients disconnected for breaking a limit, by limit'),
    eventsQueued: r.counter('cf_gateway_events_queued_total', 'Events committed to the durable queue (then PUBACKed)'),
    eventCopies: r.counter('cf_gateway_event_copies_total', 'Second copies of a queued event with other bytes (tampered, or re-sealed by the device), by device; forwarded for the cloud to verify'),
    publishesRefused: r.counter('cf_gateway_publishes_refused_total', 'Publishes refused, by reason'),
    publishesThrottled: r.counter('cf_gateway_publishes_throttled_total', 'Publishes over the rate, admitted late (PUBACK and socket reads wait for a token)'),
    commitBatch: r.histogram('cf_gateway_commit_batch_size', 'Events per group commit', [1, 2, 5, 10, 20, 50, 100, 200, 500]),
    backlogDepth: r.gauge('cf_gateway_backlog_depth', 'Events queued for the cloud'),
    backlogOldestSeconds: r.gauge('cf_gateway_backlog_oldest_age_seconds', 'Age of the oldest queued event'),
    eventsForwarded: r.counter('cf_gateway_events_forwarded_total', 'Events the cloud answered for, by status'),
    forwardFailures: r.counter('cf_gateway_forward_failures_total', 'Failed ingest calls, by kind'),
    breakerOpen: r.gauge('cf_gateway_circuit_open', '1 while the circuit breaker to the cloud is open'),
    outboundDepth: r.gauge('cf_gateway_outbound_depth', 'Commands and receipts waiting for a device'),
    outboundDelivered: r.counter('cf_gateway_outbound_delivered_total', 'Commands and receipts PUBACKed by devices, by channel'),
    commandsReceived: r.counter('cf_gateway_commands_received_total', 'Commands fetched from the cloud'),
    deadLettered: r.counter('cf_gateway_events_dead_lettered_total', 'Events the cloud refused on their own as malformed, parked in dead_letters'),
    deadLetters: r.gauge('cf_gateway_dead_letters', 'Events parked in dead_letters'),
    reportsDropped: r.counter('cf_gateway_reports_dropped_total', 'Delivery or presence reports the cloud refused on their own as malformed, by kind'),
    unwipedOldestSeconds: r.gauge('cf_gateway_unwiped_oldest_age_seconds', 'Age of the oldest deleted copy (event, command, receipt) whose bytes may still be on disk; stays under wipeWithinSeconds while the promise is kept'),
    wipes: r.counter('cf_gateway_wipes_total', 'Wipes of deleted copies (VACUUM and WAL truncation), by outcome'),
  };
}
