import { describe, expect, it } from 'vitest';
import { maySubscribe, publishRights, sessionId, type ClientIdentity } from './authz.js';

const mayPublish = (who: ClientIdentity, topic: string) => publishRights(who).has(topic);

const device: ClientIdentity = { tenant: 'acme', role: 'device', id: 'door-1', serial: '1' };
const integration: ClientIdentity = { tenant: 'acme', role: 'integration', id: 'door-system', serial: '2' };
const operator: ClientIdentity = { tenant: 'acme', role: 'operator', id: 'ops', serial: '3' };

describe('rights from the certificate', () => {
  it('a device publishes only its own events, status and door topics', () => {
    for (const ch of ['events', 'status', 'door']) expect(mayPublish(device, `cf/v1/acme/door-1/${ch}`)).toBe(true);
    for (const ch of ['ack', 'cmd']) expect(mayPublish(device, `cf/v1/acme/door-1/${ch}`)).toBe(false);
    expect(mayPublish(device, 'cf/v1/acme/door-2/events')).toBe(false);
    expect(mayPublish(device, 'cf/v1/globex/door-1/events')).toBe(false);
    expect(mayPublish(device, 'cf/v1/acme/door-1/events/extra')).toBe(false);
    expect(mayPublish(device, 'cf/v1/acme/+/events')).toBe(false);
    expect(mayPublish(device, '$SYS/broker')).toBe(false);
    expect([...publishRights(device).values()]).toEqual(['events', 'status', 'door']);
  });

  it('a device subscribes only to its own ack and cmd, without wildcards', () => {
    expect(maySubscribe(device, 'cf/v1/acme/door-1/ack')).toBe(true);
    expect(maySubscribe(device, 'cf/v1/acme/door-1/cmd')).toBe(true);
    expect(maySubscribe(device, 'cf/v1/acme/door-1/events')).toBe(false);
    expect(maySubscribe(device, 'cf/v1/acme/door-2/cmd')).toBe(false);
    expect(maySubscribe(device, 'cf/v1/acme/+/cmd')).toBe(false);
    expect(maySubscribe(device, 'cf/v1/acme/door-1/#')).toBe(false);
    expect(maySubscribe(device, '#')).toBe(false);
  });

  it('an integration reads door decisions and status of its tenant only; an operator status and door', () => {
    expect(maySubscribe(integration, 'cf/v1/acme/+/door')).toBe(true);
    expect(maySubscribe(integration, 'cf/v1/acme/door-1/door')).toBe(true);
    expect(maySubscribe(integration, 'cf/v1/acme/+/status')).toBe(true);
    expect(maySubscribe(integration, 'cf/v1/acme/door-1/status')).toBe(true);
    for (const ch of ['events', 'ack', 'cmd']) expect(maySubscribe(integration, `cf/v1/acme/+/${ch}`)).toBe(false);
    expect(maySubscribe(integration, 'cf/v1/globex/+/status')).toBe(false);
    expect(maySubscribe(integration, 'cf/v1/acme/+/+')).toBe(false);
    expect(maySubscribe(integration, 'cf/v1/acme/door-1/#')).toBe(false);
    expect(maySubscribe(integration, 'clockface/acme/door-1/#')).toBe(false);
    expect(maySubscribe(integration, 'cf/v1/globex/+/door')).toBe(false);
    expect(maySubscribe(integration, 'cf/v1/acme/#')).toBe(false);
    expect(maySubscribe(integration, 'cf/v1/+/+/door')).toBe(false);
    expect(maySubscribe(operator, 'cf/v1/acme/+/status')).toBe(true);
    expect(maySubscribe(operator, 'cf/v1/acme/+/door')).toBe(true);
    expect(maySubscribe(operator, 'cf/v1/acme/+/cmd')).toBe(false);
    for (const ch of ['events', 'status', 'door', 'ack', 'cmd']) expect(mayPublish(integration, `cf/v1/acme/door-1/${ch}`)).toBe(false);
    expect(mayPublish(operator, 'cf/v1/acme/door-1/status')).toBe(false);
  });

  it('names sessions after the certificate, not the claimed client id', () => {
    expect(sessionId(device, 'door-2')).toBe('acme/device/door-1');
    expect(sessionId(integration, 'bridge#1/x')).toBe('acme/integration/door-system/bridge1x');
  });
});
